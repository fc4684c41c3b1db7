// Response conformance against the OpenAPI document: every HTTP response the
// integration tests see is checked here, so the contract cannot drift from
// what the edge actually sends.
import { escapeToken, methodsAt, operationFor, resolveRef, validateAgainst, type OperationRef } from "../../contracts/openapi.js";
import { parseSse } from "./sse-parse.js";

type Json = Record<string, unknown>;

export interface ResponseLike {
  status: number;
  headers: Headers | Record<string, string>;
  body: string;
}

/** Every way `res` departs from what the contract declares for `method path`; empty when it conforms. */
export function checkResponse(method: string, path: string, res: ResponseLike): string[] {
  const concretePath = path.split(/[?#]/)[0]!;
  const where = `${method.toUpperCase()} ${concretePath} -> ${res.status}`;
  const op = operationFor(method, concretePath);
  if (!op) {
    const declared = methodsAt(concretePath);
    if (declared.length > 0 && res.status === 405) return checkMethodNotAllowed(declared, res).map((p) => `${where}: ${p}`);
    return [`${method.toUpperCase()} ${concretePath}: no such operation in the contract`];
  }

  const responses = isObject(op.node.responses) ? op.node.responses : {};
  const key = [String(res.status), `${String(res.status)[0]}XX`, "default"].find((k) => k in responses);
  if (!key) return [`${where}: status ${res.status} is not declared (declared: ${Object.keys(responses).join(", ")})`];
  const response = resolveRef(responses[key], `${op.pointer}/responses/${escapeToken(key)}`);
  const declared = isObject(response.node) ? response.node : {};
  const headers = lowerCaseHeaders(res.headers);
  const problems = checkHeaders(declared, headers).map((p) => `${where}: ${p}`);
  return [...problems, ...checkBody(op, response.pointer, declared, headers, res).map((p) => `${where}: ${p}`)];
}

/** A method the path does not declare: 405, Allow naming exactly the declared methods (HEAD with GET), the error envelope. */
function checkMethodNotAllowed(declared: string[], res: ResponseLike): string[] {
  const headers = lowerCaseHeaders(res.headers);
  const problems: string[] = [];
  if (!headers.has("x-correlation-id")) problems.push("missing header X-Correlation-Id");
  const expected = [...declared, ...(declared.includes("GET") ? ["HEAD"] : [])].sort();
  const allow = (headers.get("allow") ?? "")
    .split(",")
    .map((m) => m.trim().toUpperCase())
    .filter(Boolean)
    .sort();
  if (allow.join(", ") !== expected.join(", "))
    problems.push(`Allow is "${allow.join(", ")}", the contract declares ${expected.join(", ")}`);
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    return [...problems, "body is not valid JSON"];
  }
  const problem = validateAgainst("/components/schemas/ErrorEnvelope", body, "body");
  if (problem) problems.push(problem.message);
  else if ((body as Json).code !== "METHOD_NOT_ALLOWED") problems.push(`code is ${String((body as Json).code)}, not METHOD_NOT_ALLOWED`);
  return problems;
}

function checkHeaders(declared: Json, headers: Map<string, string>): string[] {
  const problems: string[] = [];
  // The spec requires the correlation id on every response, declared or not.
  if (!headers.has("x-correlation-id")) problems.push("missing header X-Correlation-Id");
  for (const [name, raw] of Object.entries(isObject(declared.headers) ? declared.headers : {})) {
    const header = resolveRef(raw, "").node;
    const value = headers.get(name.toLowerCase());
    if (value === undefined) {
      if (isObject(header) && header.required === true && name.toLowerCase() !== "x-correlation-id")
        problems.push(`missing header ${name}`);
      continue;
    }
    const type = isObject(header) && isObject(header.schema) ? header.schema.type : undefined;
    if (type === "integer" && !/^-?\d+$/.test(value.trim())) problems.push(`header ${name} must be an integer, got "${value}"`);
    if (type === "number" && (value.trim() === "" || !Number.isFinite(Number(value))))
      problems.push(`header ${name} must be a number, got "${value}"`);
  }
  return problems;
}

function checkBody(op: OperationRef, responsePointer: string, declared: Json, headers: Map<string, string>, res: ResponseLike): string[] {
  const content = isObject(declared.content) ? declared.content : {};
  if (res.status === 204 || Object.keys(content).length === 0) return res.body.length > 0 ? ["body must be empty"] : [];
  const contentType = (headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  const mediaKey = Object.keys(content).find((k) => k.toLowerCase() === contentType);
  if (!mediaKey) return [`content-type "${contentType}" is not one of ${Object.keys(content).join(", ")}`];
  if (contentType === "application/json" || contentType.endsWith("+json")) {
    let body: unknown;
    try {
      body = JSON.parse(res.body);
    } catch {
      return ["body is not valid JSON"];
    }
    const problem = validateAgainst(`${responsePointer}/content/${escapeToken(mediaKey)}/schema`, body, "body");
    return problem ? [problem.message] : [];
  }
  return contentType === "text/event-stream" ? checkSseBody(op, res.body) : [];
}

/**
 * Each frame: an event name from x-sse-events, and data valid against its
 * schema; an increasing decimal id, unless the operation says `x-sse-ids:
 * false` (the OpenAI and Anthropic dialects send none, and then none may
 * appear); the one frame without an id is a last `error` frame of the edge's
 * own (CORE_UNAVAILABLE: core stayed unreachable; SHUTTING_DOWN: the edge is
 * stopping), which is no event of the task. With `x-sse-done`, the last frame is exactly that data (OpenAI's
 * `[DONE]`) unless the stream ended on an error frame, and nothing follows it.
 */
function checkSseBody(op: OperationRef, body: string): string[] {
  const events = Array.isArray(op.node["x-sse-events"]) ? (op.node["x-sse-events"] as unknown[]) : [];
  const withIds = op.node["x-sse-ids"] !== false;
  const done = typeof op.node["x-sse-done"] === "string" ? op.node["x-sse-done"] : undefined;
  const problems: string[] = [];
  let lastId = -1;
  const frames = parseSse(body);
  frames.forEach((frame, index) => {
    const at = `frame #${index} (${frame.event})`;
    if (!withIds) {
      if (frame.id !== undefined) problems.push(`${at}: this dialect sends no ids, got ${JSON.stringify(frame.id)}`);
    } else if (frame.id === undefined && index === frames.length - 1 && isEdgesOwnError(frame)) {
      // The edge's own last word: no id, so a reconnect resumes after the last real frame.
    } else if (frame.id === undefined || !/^\d+$/.test(frame.id)) {
      problems.push(`${at}: id must be a decimal sequence number, got ${JSON.stringify(frame.id ?? null)}`);
    } else if (Number(frame.id) <= lastId) {
      problems.push(`${at}: id ${frame.id} does not increase (previous ${lastId})`);
    } else {
      lastId = Number(frame.id);
    }
    if (done !== undefined && frame.data.join("\n") === done) {
      if (index !== frames.length - 1) problems.push(`${at}: ${done} must be the last frame`);
      return;
    }
    problems.push(...checkFrameData(op, events, frame.event, frame.data.join("\n")).map((p) => `${at}: ${p}`));
  });
  if (done !== undefined && frames.length > 0 && !endsWithDoneOrError(frames, done))
    problems.push(`the stream must end with ${done} or an error frame`);
  return problems;
}

/** An error frame the edge writes itself rather than relays (it is shutting down). */
function isEdgesOwnError(frame: { event: string; data: string[] }): boolean {
  if (frame.event !== "error") return false;
  try {
    const code = (JSON.parse(frame.data.join("\n")) as { code?: unknown }).code;
    return code === "SHUTTING_DOWN" || code === "CORE_UNAVAILABLE";
  } catch {
    return false;
  }
}

function checkFrameData(op: OperationRef, events: unknown[], name: string, text: string): string[] {
  const eventIndex = events.findIndex((e) => isObject(e) && e.name === name);
  if (eventIndex < 0) return ["unknown event name"];
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return ["data is not valid JSON"];
  }
  const schema = resolveRef((events[eventIndex] as Json).schema, `${op.pointer}/x-sse-events/${eventIndex}/schema`);
  const problem = validateAgainst(schema.pointer, data, "data");
  return problem ? [problem.message] : [];
}

function endsWithDoneOrError(frames: ReturnType<typeof parseSse>, done: string): boolean {
  const last = frames.at(-1)!.data.join("\n");
  if (last === done) return true;
  try {
    return isObject(JSON.parse(last)) && "error" in (JSON.parse(last) as Json);
  } catch {
    return false;
  }
}

function lowerCaseHeaders(headers: Headers | Record<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  if (headers instanceof Headers) headers.forEach((value, name) => out.set(name.toLowerCase(), value));
  else for (const [name, value] of Object.entries(headers)) if (value !== undefined) out.set(name.toLowerCase(), String(value));
  return out;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
