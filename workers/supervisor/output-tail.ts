/**
 * The last lines a process wrote to one of its streams, bounded in lines and
 * in characters per line, so a chatty or binary-spewing engine cannot grow
 * the supervisor's memory. Kept for crash reports ("what did it say last?").
 */
export class OutputTail {
  private readonly ring: string[] = [];
  private partial = "";

  constructor(
    private readonly maxLines = 20,
    private readonly maxLineChars = 500,
    /** Called with every complete line (already truncated), e.g. to relay it to a debug log. */
    private readonly onLine?: (line: string) => void,
  ) {}

  /** Feeds decoded text; lines end at \n (a trailing \r is dropped). */
  push(text: string): void {
    const parts = (this.partial + text).split("\n");
    this.partial = this.truncate(parts.pop()!);
    for (const part of parts) this.add(part);
  }

  /** Flushes a last line without a newline (the stream ended). */
  end(): void {
    if (this.partial !== "") this.add(this.partial);
    this.partial = "";
  }

  /** The kept lines, oldest first, including an unterminated last line. */
  lines(): string[] {
    const out = [...this.ring];
    if (this.partial.trim() !== "") out.push(this.partial.replace(/\r$/, ""));
    return out.slice(-this.maxLines);
  }

  private add(raw: string): void {
    const line = this.truncate(raw.replace(/\r$/, ""));
    if (line.trim() === "") return;
    this.ring.push(line);
    if (this.ring.length > this.maxLines) this.ring.shift();
    this.onLine?.(line);
  }

  private truncate(line: string): string {
    return line.length > this.maxLineChars ? line.slice(0, this.maxLineChars) + "…" : line;
  }
}
