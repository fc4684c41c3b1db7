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
  | { k: "finish"; id: string };

/** The records about one task (all but the epoch). */
export type TaskRecord = Exclude<JournalRecord, { k: "epoch" }>;

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

/** An unfinished task as the journal knows it. */
export interface LiveTask {
  admit: AdmitRecord;
  /** The replica it was last dispatched to, while it is there. */
  dispatchedTo?: string;
}

export interface Replayed {
  /** The highest epoch the file names (0 for none). */
  epoch: number;
  /** Unfinished tasks, in admission order. */
  live: Map<string, LiveTask>;
  /** Lines after the last good one (a torn tail), which replay ignored. */
  ignoredLines: number;
}

/** Replays a journal's text up to its first bad line. */
export function replay(text: string): Replayed {
  const live = new Map<string, LiveTask>();
  let epoch = 0;
  const lines = text.split("\n");
  // The text ends with a newline, so the last piece is empty unless the last write was torn.
  if (lines.at(-1) === "") lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const record = decodeLine(lines[i]!);
    if (!record) return { epoch, live, ignoredLines: lines.length - i };
    epoch = apply(live, record, epoch);
  }
  return { epoch, live, ignoredLines: 0 };
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
    case "finish":
      live.delete(record.id);
      break;
  }
  return epoch;
}

/** The lines that say what `task` is now: its admission and, while it is on a replica, its dispatch. */
export function linesOf(task: LiveTask): string {
  const admit = encodeLine(task.admit);
  return task.dispatchedTo === undefined ? admit : admit + encodeLine({ k: "dispatch", id: task.admit.id, replica: task.dispatchedTo });
}
