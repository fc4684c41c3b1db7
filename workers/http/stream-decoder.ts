// Incremental decoders for engines' streamed response bodies: Server-Sent
// Events (llama.cpp, vLLM, TGI, Triton, OpenAI) and JSON lines. Both take raw
// socket chunks, split anywhere (inside a line, between "\r" and "\n", inside
// a multi-byte UTF-8 character), and keep only the unfinished last line
// between chunks, so a long generation never re-scans or re-joins its body.

/** One dispatched SSE event. */
export interface SseFrame {
  /** The frame's `event:` field; absent when it had none or an empty one (the default "message"). */
  event?: string;
  /** Its `data:` lines joined with "\n". */
  data: string;
  /** The frame's own `id:` field (not carried over to later frames, unlike EventSource's lastEventId). */
  id?: string;
}

const LF = 10;
const CR = 13;

/**
 * Bytes in, complete lines out. Lines end in "\n", "\r\n" or "\r"; a chunk
 * that ends in "\r" leaves a note to drop a "\n" that starts the next chunk,
 * so a CRLF split across chunks ends one line, not two.
 */
class LineSplitter {
  // One decoder in stream mode holds back an incomplete UTF-8 sequence until its last byte arrives.
  private readonly utf8 = new TextDecoder("utf-8");
  private tail = "";
  private afterCR = false;

  push(chunk: Uint8Array): string[] {
    return this.split(this.utf8.decode(chunk, { stream: true }));
  }

  /** The last line when the body did not end with a line break, then resets. */
  end(): string[] {
    const lines = this.split(this.utf8.decode());
    if (this.tail !== "") lines.push(this.tail);
    this.tail = "";
    this.afterCR = false;
    return lines;
  }

  private split(text: string): string[] {
    const lines: string[] = [];
    if (text === "") return lines;
    let start = 0;
    if (this.afterCR && text.charCodeAt(0) === LF) start = 1;
    this.afterCR = false;
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== LF && c !== CR) continue;
      lines.push(this.tail + text.slice(start, i));
      this.tail = "";
      if (c === CR) {
        if (i + 1 === text.length) this.afterCR = true;
        else if (text.charCodeAt(i + 1) === LF) i++;
      }
      start = i + 1;
    }
    if (start < text.length) this.tail += text.slice(start);
    return lines;
  }
}

/**
 * Server-Sent Events by the WHATWG parsing rules: `data:` lines are joined
 * with "\n", one space after the colon is dropped, comment lines (":") and
 * unknown fields (including `retry:`) are ignored, and a blank line dispatches
 * the frame when it has at least one `data` line. A leading BOM is dropped.
 */
export class SseDecoder {
  private readonly lines = new LineSplitter();
  private data: string[] = [];
  private event: string | undefined;
  private id: string | undefined;

  /** Every frame completed by this chunk, in order; often none. */
  push(chunk: Uint8Array): SseFrame[] {
    return this.take(this.lines.push(chunk), false);
  }

  /**
   * At end of body: the last frame even without its blank line, when it has
   * data (llama.cpp ends its streams without "[DONE]" or a trailing blank
   * line). The decoder is then reset.
   */
  end(): SseFrame[] {
    return this.take(this.lines.end(), true);
  }

  private take(lines: string[], atEnd: boolean): SseFrame[] {
    const frames: SseFrame[] = [];
    for (const line of lines) {
      if (line === "") this.dispatch(frames);
      else this.field(line);
    }
    if (atEnd) this.dispatch(frames);
    return frames;
  }

  private field(line: string): void {
    const colon = line.indexOf(":");
    if (colon === 0) return;
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (name) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.event = value === "" ? undefined : value;
        break;
      case "id":
        if (!value.includes("\0")) this.id = value;
        break;
    }
  }

  private dispatch(frames: SseFrame[]): void {
    if (this.data.length > 0) {
      const frame: SseFrame = { data: this.data.join("\n") };
      if (this.event !== undefined) frame.event = this.event;
      if (this.id !== undefined) frame.id = this.id;
      frames.push(frame);
    }
    this.data = [];
    this.event = undefined;
    this.id = undefined;
  }
}

/**
 * Newline-delimited JSON (or any line protocol): one string per line that is
 * not blank (whitespace-only lines are skipped too), with the line break
 * removed and the text otherwise untouched. Parsing is the caller's job, so a
 * bad line fails where the engine's format is known.
 */
export class JsonLinesDecoder {
  private readonly lines = new LineSplitter();

  push(chunk: Uint8Array): string[] {
    return this.lines.push(chunk).filter(notBlank);
  }

  /** The last line when the body did not end with a line break, then resets. */
  end(): string[] {
    return this.lines.end().filter(notBlank);
  }
}

function notBlank(line: string): boolean {
  return line.trim() !== "";
}
