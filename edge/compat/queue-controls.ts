import { createHash, randomUUID } from "node:crypto";
import type { Context } from "koa";
import { ErrorCode, Priority } from "../../contracts/gen/llama_orch/v1/common.js";
import { HttpError } from "../http-errors.js";

/**
 * The queue fields of a task that the OpenAI and Anthropic request bodies
 * have no place for: they come from headers (or, for the session, from the
 * body's end-user id) and are the same for every compatible API.
 */
export interface QueueControls {
  taskId: string;
  sessionId: string;
  priority: Priority;
  deadlineMs: number;
}

export interface QueueControlInputs {
  /** The body's end-user id (OpenAI `user`, Anthropic `metadata.user_id`): a stable session when no X-Session-Id. */
  user?: string;
  /** OpenAI's `service_tier`: "flex" asks for cheaper, slower processing, which is the batch queue here. */
  serviceTier?: string;
  defaultDeadlineMs: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The UUIDv5 namespace of sessions derived from an end-user id (a fixed, random UUID of llama-orch's own). */
const USER_SESSION_NAMESPACE = "3f9d6c1e-5a7b-4e2d-9c8f-0b1a2d3e4f56";
/** A deadline longer than a day is a mistake, not a plan. */
const MAX_DEADLINE_MS = 86_400_000;

export function queueControls(ctx: Context, inputs: QueueControlInputs): QueueControls {
  return {
    taskId: randomUUID(),
    sessionId: sessionOf(ctx, inputs.user),
    priority: priorityOf(ctx.get("X-Priority"), inputs.serviceTier),
    deadlineMs: deadlineOf(ctx.get("X-Deadline-Ms"), inputs.defaultDeadlineMs),
  };
}

/** X-Priority wins; without it `service_tier: flex` means batch; everything else is interactive. */
function priorityOf(header: string, serviceTier: string | undefined): Priority {
  if (header !== "") {
    const value = header.trim().toLowerCase();
    if (value === "interactive") return Priority.PRIORITY_INTERACTIVE;
    if (value === "batch") return Priority.PRIORITY_BATCH;
    throw invalid("X-Priority", `X-Priority must be interactive or batch, got ${JSON.stringify(header)}`);
  }
  return serviceTier === "flex" ? Priority.PRIORITY_BATCH : Priority.PRIORITY_INTERACTIVE;
}

/**
 * X-Session-Id when given; else one session per end user of this caller (so
 * their turns share KV warmth and budgets, and two API keys' users named
 * alike do not); else a session of its own for this one request.
 */
function sessionOf(ctx: Context, user: string | undefined): string {
  const header = ctx.get("X-Session-Id");
  if (header !== "") {
    if (!UUID.test(header)) throw invalid("X-Session-Id", `X-Session-Id must be a uuid, got ${JSON.stringify(header)}`);
    return header.toLowerCase();
  }
  if (user) return uuidV5(USER_SESSION_NAMESPACE, `${String(ctx.state.identity)}\n${user}`);
  return randomUUID();
}

function deadlineOf(header: string, fallback: number): number {
  if (header === "") return fallback;
  const n = /^\d{1,9}$/.test(header.trim()) ? Number(header.trim()) : NaN;
  if (!(n >= 1 && n <= MAX_DEADLINE_MS)) {
    throw invalid(
      "X-Deadline-Ms",
      `X-Deadline-Ms must be a whole number of milliseconds from 1 to ${MAX_DEADLINE_MS}, got ${JSON.stringify(header)}`,
    );
  }
  return n;
}

/** RFC 9562 UUIDv5: SHA-1 of namespace and name, with the version and variant bits set. */
export function uuidV5(namespace: string, name: string): string {
  const bytes = createHash("sha1")
    .update(Buffer.from(namespace.replace(/-/g, ""), "hex"))
    .update(name, "utf8")
    .digest()
    .subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function invalid(field: string, message: string): HttpError {
  return HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, message, { field });
}
