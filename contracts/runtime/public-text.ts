// Messages that leave the system (error envelopes, SSE error frames, pool
// health) are written for clients; the detail behind them (addresses, socket
// errors, stack traces) belongs in the log line that carries the correlation
// id. This is the last filter on text that came from elsewhere (an engine, a
// socket error, a library) before it becomes public.

/** Node's socket errors, as a client would word them. */
const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ECONNABORTED: "connection aborted",
  EPIPE: "connection closed",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found",
  ETIMEDOUT: "timed out",
};

// "connect ECONNREFUSED 127.0.0.1:8081", "getaddrinfo ENOTFOUND gpu-3", "read ECONNRESET": the operation, the code and what it names.
const SOCKET_PHRASE = new RegExp(
  `\\b(?:(?:connect|read|write|getaddrinfo|socket)\\s+)?(${Object.keys(SOCKET_ERRORS).join("|")})\\b(?:\\s+[^\\s,;)]+)?`,
  "g",
);
const IPV4 = /\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b/g;
const IPV6 = /\[[0-9a-fA-F:.]+\](?::\d{1,5})?/g;
const LOCALHOST = /\blocalhost:\d{1,5}\b/gi;
/** A JavaScript stack frame ("    at fn (file.js:1:2)") or a Python traceback's frame. */
const STACK_LINE = /^\s*(?:at\s+\S.*(?::\d+:\d+\)?|\(native\)|<anonymous>\)?)$|File ".*", line \d+)/;
const TRACEBACK = "Traceback (most recent call last)";

/** An address in public text. */
export const MASKED_ADDRESS = "[address]";

/**
 * `text` fit for a client: from the first stack frame (or a Python traceback) on, nothing; Node's
 * socket errors as words ("connection refused"); IP addresses and
 * localhost:port masked.
 */
export function publicText(text: string): string {
  const traceback = text.indexOf(TRACEBACK);
  const lines = (traceback < 0 ? text : text.slice(0, traceback)).split("\n");
  const firstFrame = lines.findIndex((l) => STACK_LINE.test(l));
  const kept = (firstFrame < 0 ? lines : lines.slice(0, firstFrame)).join("\n").replace(/[\s:]+$/, "");
  return kept
    .replace(SOCKET_PHRASE, (_all, code: string) => SOCKET_ERRORS[code] ?? code)
    .replace(IPV6, MASKED_ADDRESS)
    .replace(IPV4, MASKED_ADDRESS)
    .replace(LOCALHOST, MASKED_ADDRESS);
}
