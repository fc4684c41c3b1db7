import { readFileSync } from "node:fs";
import { stream, tokenIndices, type SseEvent, type SseStream } from "../support/http.js";
import { taskBody } from "../support/task-body.js";
import type { TestSystem } from "../support/system.js";

/** One row of the chaos table: what was done, whether what must hold held, and the figures. */
export interface ChaosRow {
  scenario: string;
  held: boolean;
  figures: string;
}

export type Scenario = () => Promise<ChaosRow>;

/** POST /v1/tasks with a key, returning the task id (throws on anything but 202). */
export async function submit(sys: TestSystem, apiKey: string | undefined, overrides: Record<string, unknown> = {}): Promise<string> {
  const body = taskBody(overrides);
  const res = await fetch(`${sys.edgeUrl}/v1/tasks`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...auth(apiKey) },
    body: JSON.stringify(body),
  });
  if (res.status !== 202) throw new Error(`submit: ${res.status} ${await res.text()}`);
  return String(body.task_id);
}

export const auth = (apiKey: string | undefined): Record<string, string> => (apiKey ? { Authorization: `Bearer ${apiKey}` } : {});

export function openStream(sys: TestSystem, apiKey: string | undefined, taskId: string, lastEventId?: string): Promise<SseStream> {
  return stream(sys.edgeUrl, `/v1/tasks/${taskId}/stream`, { ...auth(apiKey), ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) });
}

/**
 * The event ids of a stream are 1, 2, 3, ... with none missing or repeated
 * (a last error frame of the edge's own has no id: it is no event of the task).
 */
export function contiguous(events: SseEvent[], from = 1): boolean {
  const last = events.at(-1);
  const own = last?.event === "error" && last.id === undefined ? events.slice(0, -1) : events;
  return own.every((e, i) => Number(e.id) === from + i);
}

/** Ids only ever increase (a restarted core may skip some: what it did not journal, such as metrics frames, is not replayed). */
export function increasing(events: SseEvent[]): boolean {
  const ids = events.filter((e) => e.id !== undefined).map((e) => Number(e.id));
  return ids.every((id, i) => i === 0 || id > ids[i - 1]!);
}

/** Every token index from 0 to n - 1 exactly once, in order. */
export function everyTokenOnce(events: SseEvent[], n: number): boolean {
  const seen = tokenIndices(events);
  return seen.length === n && seen.every((i, k) => i === k);
}

/** How a stream ended: "end", "error CODE", or "bare close" when it just stopped. */
export function endingOf(events: SseEvent[]): string {
  const last = events.at(-1);
  if (last?.event === "end") return `end (${String(last.data.stop_reason)})`;
  if (last?.event === "error") return `error ${String(last.data.code)}${last.data.retriable ? " retriable" : ""}`;
  return "bare close";
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for `done` at most `ms`; says whether it settled. */
export async function within(done: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const settled = await Promise.race([
    done.then(
      () => true as const,
      () => true as const,
    ),
    timeout,
  ]);
  clearTimeout(timer);
  return settled;
}

/** Resident memory of a process in bytes, from /proc. */
export function rssOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}
