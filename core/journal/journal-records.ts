import { crc32 } from "node:zlib";

// The task journal's lines: one record each, `<crc32 hex> <json>\n`. The
// checksum tells a line a crash tore (or a disk mangled) from a good one, so
// replay stops at the first bad line instead of acting on half a record.

/** A task was admitted: everything needed to queue it again (`req` is its CreateTaskRequest, protobuf in base64). */
export interface AdmitRecord {
  k: "admit";
  id: string;
  pool: string;
  /** The admitting request's correlation id. */
  cid: string;
  /** Admission time, epoch ms. */
  at: number;
  req: string;
  /** The identity of the key that submitted it, when keys are checked. */
  own?: string;
}

export type JournalRecord =
  /** Which run of core wrote the file; every start writes a higher one. */
  | { k: "epoch"; epoch: number }
  | AdmitRecord
  /** The task went to a replica: after a restart it waits for that replica to hand it back. */
  | { k: "dispatch"; id: string; replica: string }
  /** Its attempt ended before producing anything: it is queued again. */
  | { k: "requeue"; id: string }
  /** Its pool lost every replica and another pool's queue took it. */
  | { k: "move"; id: string; pool: string }
  /** It ended (at, epoch ms). One that had been on a replica stays in the file a little while (JournalOptions.keepFinishedMs). */
  | { k: "finish"; id: string; at: number }
  /** Core stopped cleanly: every task of this run had ended and its clients were told. */
  | { k: "closed" };

/** The records about one task (all but the epoch and the clean stop). */
export type TaskRecord = Exclude<JournalRecord, { k: "epoch" } | { k: "closed" }>;

export function encodeLine(record: JournalRecord): string {
  const json = JSON.stringify(record);
  return `${crc32(json).toString(16).padStart(8, "0")} ${json}\n`;
}

/** The record on a line, or undefined for a torn or corrupt one. */
export function decodeLine(line: string): JournalRecord | undefined {
  if (line.length < 10 || line[8] !== " ") return undefined;
  const json = line.slice(9);
  if (Number.parseInt(line.slice(0, 8), 16) !== crc32(json)) return undefined;
  try {
    const record = JSON.parse(json) as JournalRecord;
    return typeof record === "object" && record !== null && typeof record.k === "string" ? record : undefined;
  } catch {
    return undefined;
  }
}

/** A task the journal still holds: unfinished, or just ended on a replica. */
export interface LiveTask {
  admit: AdmitRecord;
  /** The replica it was last dispatched to, while it is there (or when it ended there). */
  dispatchedTo?: string;
  /** When it ended on that replica; its last events may have gone down with core. */
  finishedAt?: number;
}

export interface Replayed {
  /** The highest epoch the file names (0 for none). */
  epoch: number;
  /** Unfinished (and just ended) tasks, in admission order. */
  live: Map<string, LiveTask>;
  /** Lines after the last good one (a torn tail), which replay ignored. */
  ignoredLines: number;
  /** The last run stopped cleanly. */
  closed: boolean;
  /** The latest time a record names: about when the last run stopped writing. */
  lastAt: number;
}

/** Replays a journal's text up to its first bad line. */
export function replay(text: string): Replayed {
  const state: Replayed = { epoch: 0, live: new Map(), ignoredLines: 0, closed: false, lastAt: 0 };
  const lines = text.split("\n");
  // The text ends with a newline, so the last piece is empty unless the last write was torn.
  if (lines.at(-1) === "") lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const record = decodeLine(lines[i]!);
    if (!record) return { ...state, ignoredLines: lines.length - i };
    state.epoch = apply(state.live, record, state.epoch);
    state.closed = record.k === "closed";
    if (record.k === "admit" || record.k === "finish") state.lastAt = Math.max(state.lastAt, record.at);
  }
  return state;
}

/** One record's effect on the live set; returns the epoch after it. */
export function apply(live: Map<string, LiveTask>, record: JournalRecord, epoch: number): number {
  switch (record.k) {
    case "epoch":
      return Math.max(epoch, record.epoch);
    case "admit":
      live.set(record.id, { admit: record });
      break;
    case "dispatch": {
      const task = live.get(record.id);
      if (task) task.dispatchedTo = record.replica;
      break;
    }
    case "requeue": {
      const task = live.get(record.id);
      if (task) task.dispatchedTo = undefined;
      break;
    }
    case "move": {
      const task = live.get(record.id);
      if (task) task.admit = { ...task.admit, pool: record.pool };
      break;
    }
    case "finish": {
      // One that ended on a replica is kept a while: its end may not have reached its client.
      const task = live.get(record.id);
      if (task?.dispatchedTo !== undefined) task.finishedAt = record.at;
      else live.delete(record.id);
      break;
    }
    case "closed":
      break;
  }
  return epoch;
}

/** The lines that say what `task` is now: its admission, its dispatch while it is (or ended) on a replica, its end. */
export function linesOf(task: LiveTask): string {
  const id = task.admit.id;
  let lines = encodeLine(task.admit);
  if (task.dispatchedTo !== undefined) lines += encodeLine({ k: "dispatch", id, replica: task.dispatchedTo });
  if (task.finishedAt !== undefined) lines += encodeLine({ k: "finish", id, at: task.finishedAt });
  return lines;
}
