// A deliberately small SSE parser for checking what the edge wrote, frame by
// frame, including the ids and event names a general-purpose client would hide.

export interface SseFrame {
  event: string;
  data: string[];
  id?: string;
}

/** Splits an SSE body into frames: blank-line separated, `:` comment lines ignored. */
export function parseSse(text: string): SseFrame[] {
  const frames: SseFrame[] = [];
  let frame: SseFrame | undefined;
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === "") {
      if (frame) frames.push(frame);
      frame = undefined;
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    frame ??= { event: "message", data: [] };
    if (field === "event") frame.event = value;
    else if (field === "data") frame.data.push(value);
    else if (field === "id") frame.id = value;
  }
  if (frame) frames.push(frame);
  return frames;
}
