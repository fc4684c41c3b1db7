import { CreateTaskRequest } from "../../contracts/gen/llama_orch/v1/task.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { JournalFile } from "./journal-file.js";
import { apply, encodeLine, linesOf, replay, type LiveTask, type TaskRecord } from "./journal-records.js";

/** A task the journal found unfinished when core started. */
export interface RecoveredTask {
  request: CreateTaskRequest;
  poolId: string;
  correlationId: string;
  admittedAt: number;
  owner?: string;
  /** The replica it was on when the last run ended: it may still be running there. */
  dispatchedTo?: string;
}

export interface Recovery {
  /** This run's epoch: one more than the last run's. */
  epoch: number;
  /** In admission order. */
  tasks: RecoveredTask[];
}

/** What the journal needs to know of a task to queue it again. */
export interface JournaledTask {
  id: string;
  poolId: string;
  correlationId: string;
  admittedAt: number;
  request: CreateTaskRequest;
  owner: string | undefined;
}

/** What the scheduler tells the journal; only admission waits for the disk. */
export interface TaskJournalSink {
  /** Resolves once the admission is on disk (and rejects when it cannot be written). */
  admitted(task: JournaledTask): Promise<void>;
  dispatched(taskId: string, replicaId: string): void;
  requeued(taskId: string): void;
  moved(taskId: string, poolId: string): void;
  finished(taskId: string): void;
}

export interface JournalOptions {
  /** Garbage (lines of finished tasks and superseded states) below this many bytes never triggers a rewrite. */
  minGarbageBytes: number;
  /**
   * A task that ended on a replica stays in the journal this long: had core
   * died just then, its last events may not have reached its client, and the
   * replica, which holds what ended shortly before it lost core, hands them
   * back to the restarted core. After a clean stop none is kept.
   */
  keepFinishedMs: number;
}

const DEFAULT_OPTIONS: JournalOptions = { minGarbageBytes: 1024 * 1024, keepFinishedMs: 5_000 };

/**
 * The append-only journal of admitted tasks, so a core that was killed
 * queues them again when it restarts. Records go to disk in batches (group
 * commit): whatever arrives while a write and its fsync are under way shares
 * the next one, so an admission waits for at most two fsyncs however many
 * arrive at once. When the lines of finished tasks outweigh the live ones the
 * next batch rewrites the file with only the live tasks instead, atomically.
 * The one owner of the file, its live set and its batches.
 */
export class TaskJournal implements TaskJournalSink {
  /** Line bytes of each live task: its admission and, while it is on a replica, its dispatch. */
  private readonly sizes = new Map<string, { admit: number; dispatch: number }>();
  private liveBytes = 0;
  /** Bytes in the file, the pending batch included. */
  private fileBytes = 0;
  private pending: string[] = [];
  private waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private flushing: Promise<void> | undefined;
  /** A write failed, so the file may end in a torn line: the next batch rewrites it whole. */
  private rewriteNext = false;
  private failing = false;
  private closed = false;
  /** Tasks kept after they ended on a replica, oldest first: when they ended. */
  private readonly ended = new Map<string, number>();

  private constructor(
    private readonly file: JournalFile,
    private readonly logger: Logger,
    private readonly epoch: number,
    private readonly live: Map<string, LiveTask>,
    private readonly options: JournalOptions,
  ) {
    for (const [id, task] of live) this.resize(id, task);
    const ended = [...live].filter(([, t]) => t.finishedAt !== undefined).sort(([, a], [, b]) => a.finishedAt! - b.finishedAt!);
    for (const [id, task] of ended) this.ended.set(id, task.finishedAt!);
  }

  /** Opens (or creates) the journal in `dir`: the unfinished tasks of the last run, and a clean file that holds only them. */
  static async open(
    dir: string,
    logger: Logger,
    options: Partial<JournalOptions> = {},
  ): Promise<{ journal: TaskJournal; recovery: Recovery }> {
    const { file, text } = await JournalFile.open(dir);
    const replayed = replay(text);
    const opts = { ...DEFAULT_OPTIONS, ...options };
    // What ended well before the last run stopped (or ended at all, after a clean stop) reached its clients.
    for (const [id, task] of replayed.live) {
      if (task.finishedAt !== undefined && (replayed.closed || task.finishedAt < replayed.lastAt - opts.keepFinishedMs))
        replayed.live.delete(id);
    }
    const tasks = decodeLive(replayed.live, logger);
    const journal = new TaskJournal(file, logger, replayed.epoch + 1, replayed.live, opts);
    // The new epoch on disk before anything is served, and a torn tail gone.
    await journal.rewrite();
    if (tasks.length > 0 || replayed.ignoredLines > 0) {
      logger.info(
        { event: "journal_recovered", tasks: tasks.length, ignored_lines: replayed.ignoredLines, epoch: journal.epoch, path: file.path },
        `task journal ${file.path}: ${tasks.length} unfinished tasks recovered${replayed.ignoredLines ? `, ${replayed.ignoredLines} torn lines ignored` : ""}`,
      );
    }
    return { journal, recovery: { epoch: journal.epoch, tasks } };
  }

  admitted(task: JournaledTask): Promise<void> {
    const req = Buffer.from(CreateTaskRequest.encode(task.request).finish()).toString("base64");
    return this.record({ k: "admit", id: task.id, pool: task.poolId, cid: task.correlationId, at: task.admittedAt, req, own: task.owner });
  }

  dispatched(taskId: string, replicaId: string): void {
    this.recordQuietly({ k: "dispatch", id: taskId, replica: replicaId });
  }

  requeued(taskId: string): void {
    this.recordQuietly({ k: "requeue", id: taskId });
  }

  moved(taskId: string, poolId: string): void {
    this.recordQuietly({ k: "move", id: taskId, pool: poolId });
  }

  finished(taskId: string): void {
    this.recordQuietly({ k: "finish", id: taskId, at: Date.now() });
  }

  /** Writes what is pending and that the stop was clean, then lets the file (and its lock) go. */
  async close(): Promise<void> {
    if (!this.closed) this.enqueue(encodeLine({ k: "closed" })).catch(() => {});
    this.closed = true;
    await this.flushing;
    await this.file.close();
  }

  private recordQuietly(record: TaskRecord): void {
    // The batch's failure is logged once where it happens; waiting for it is admission's business only.
    this.record(record).catch(() => {});
  }

  private record(record: TaskRecord): Promise<void> {
    if (this.closed || (record.k !== "admit" && !this.live.has(record.id))) return Promise.resolve();
    const line = encodeLine(record);
    apply(this.live, record, this.epoch);
    this.resize(record.id, this.live.get(record.id), record.k === "admit" ? line.length : undefined);
    if (record.k === "finish" && this.live.has(record.id)) this.ended.set(record.id, record.at);
    this.forgetEnded(Date.now());
    return this.enqueue(line);
  }

  private enqueue(line: string): Promise<void> {
    this.pending.push(line);
    this.fileBytes += line.length;
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Tasks that ended on a replica long enough ago leave the live set (their lines become garbage). */
  private forgetEnded(now: number): void {
    for (const [id, at] of this.ended) {
      if (at >= now - this.options.keepFinishedMs) break;
      this.ended.delete(id);
      this.live.delete(id);
      this.resize(id, undefined);
    }
  }

  private async flush(): Promise<void> {
    // Records made in the same turn of the event loop (an admission and its dispatch) share the first write.
    await Promise.resolve();
    while (this.pending.length > 0) {
      const lines = this.pending;
      const waiters = this.waiters;
      this.pending = [];
      this.waiters = [];
      try {
        // A rewrite holds every live task as it is now, so it replaces this batch's lines too.
        if (this.compactionDue()) await this.rewrite();
        else await this.file.append(lines.join(""));
        this.failing = false;
        for (const w of waiters) w.resolve();
      } catch (err) {
        this.rewriteNext = true;
        if (!this.failing) this.logger.error({ err, event: "journal_write_failed", path: this.file.path }, "cannot write the task journal");
        this.failing = true;
        for (const w of waiters) w.reject(err);
      }
    }
    this.flushing = undefined;
  }

  private compactionDue(): boolean {
    const garbage = this.fileBytes - this.liveBytes;
    return this.rewriteNext || (garbage > this.liveBytes && garbage >= this.options.minGarbageBytes);
  }

  /** The file becomes this run's epoch and the live tasks, nothing else. */
  private async rewrite(): Promise<void> {
    let data = encodeLine({ k: "epoch", epoch: this.epoch });
    for (const task of this.live.values()) data += linesOf(task);
    await this.file.replace(data);
    this.rewriteNext = false;
    this.fileBytes = data.length;
  }

  /** Keeps liveBytes the sum of the live tasks' line bytes; `admitBytes` is known when the admission line was just made. */
  private resize(id: string, task: LiveTask | undefined, admitBytes?: number): void {
    const before = this.sizes.get(id);
    if (before) this.liveBytes -= before.admit + before.dispatch;
    if (!task) {
      this.sizes.delete(id);
      return;
    }
    const admit = admitBytes ?? before?.admit ?? encodeLine(task.admit).length;
    const dispatch = task.dispatchedTo === undefined ? 0 : encodeLine({ k: "dispatch", id, replica: task.dispatchedTo }).length;
    this.sizes.set(id, { admit, dispatch });
    this.liveBytes += admit + dispatch;
  }
}

/** The live tasks' requests; one that no longer decodes is dropped (and logged) rather than blocking every start. */
function decodeLive(live: Map<string, LiveTask>, logger: Logger): RecoveredTask[] {
  const tasks: RecoveredTask[] = [];
  for (const [id, { admit, dispatchedTo }] of live) {
    try {
      const request = CreateTaskRequest.decode(Buffer.from(admit.req, "base64"));
      tasks.push({ request, poolId: admit.pool, correlationId: admit.cid, admittedAt: admit.at, owner: admit.own, dispatchedTo });
    } catch (err) {
      live.delete(id);
      logger.warn({ err, event: "journal_task_dropped", job_id: id }, `journaled task ${id} cannot be decoded and is dropped`);
    }
  }
  return tasks;
}
