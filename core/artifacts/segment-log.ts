import { open, readdir, rm, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { crc32 } from "node:zlib";
import { ensureDir } from "../../contracts/runtime/atomic-file.js";

// Transcripts (one per finished task) in a few large append-only files instead
// of one small file each: a record is `<id> <created_ms> <bytes> <crc32>\n`,
// the text, and `\n`. Appends wait for one write and one fdatasync per batch;
// whole segments older than the retention are deleted. A crash can tear only
// the tail of the newest segment, which is cut off when the log opens again; a
// whole record whose checksum fails is passed over.

export interface SegmentLogOptions {
  /** A segment this large is closed and the next one begun. */
  maxSegmentBytes?: number;
  /** Segments whose newest record is older than this are deleted (0: kept for ever). */
  retentionMs?: number;
  clock?: () => number;
}

interface Location {
  segment: number;
  /** Where the text starts, and how many bytes it has. */
  offset: number;
  bytes: number;
  createdMs: number;
}

interface Pending {
  id: string;
  text: string;
  createdMs: number;
  done: (err?: Error) => void;
}

const SEGMENT = /^(\d{8})\.seg$/;
const HEADER = /^([0-9a-f]{64}) (\d+) (\d+) ([0-9a-f]{8})\n/;
const HEADER_MAX = 120;
const COMPACT_EVERY_MS = 60 * 60 * 1000;

const segmentName = (n: number) => `${String(n).padStart(8, "0")}.seg`;
const checksum = (b: Buffer) => (crc32(b) >>> 0).toString(16).padStart(8, "0");

export class SegmentLog {
  private readonly index = new Map<string, Location>();
  /** The newest record of each segment, for compaction by age. */
  private readonly newest = new Map<number, number>();
  /** Appended, not yet on disk: readable already (a client may ask right after the end frame). */
  private readonly unwritten = new Map<string, Pending>();
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private readonly compactTimer: NodeJS.Timeout;
  /** Writes (each with its fdatasync) so far: one per batch of appends. */
  batchesWritten = 0;

  private constructor(
    private readonly dir: string,
    private active: { n: number; handle: FileHandle; size: number },
    private readonly options: Required<SegmentLogOptions>,
  ) {
    this.compactTimer = setInterval(() => void this.compact(), COMPACT_EVERY_MS);
    this.compactTimer.unref();
  }

  static async open(dir: string, options: SegmentLogOptions = {}): Promise<SegmentLog> {
    const full = { maxSegmentBytes: 64 * 1024 * 1024, retentionMs: 7 * 24 * 3600 * 1000, clock: Date.now, ...options };
    await ensureDir(dir);
    const numbers = (await readdir(dir))
      .map((name) => SEGMENT.exec(name)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const found: { n: number; records: [string, Location][]; end: number }[] = [];
    // Only the newest segment can have been torn by a crash, so only its bytes are read and checked here;
    // the older ones give their headers, and every read checks the text against its id anyway.
    for (const n of numbers) found.push({ n, ...(await scanSegment(path.join(dir, segmentName(n)), n, n === numbers.at(-1))) });
    const last = found.at(-1);
    const activeN = last ? last.n : 1;
    const handle = await open(path.join(dir, segmentName(activeN)), "a+");
    // A torn tail (a crash mid-append) is cut off, so the next record starts where the last good one ended.
    if (last) await handle.truncate(last.end);
    const log = new SegmentLog(dir, { n: activeN, handle, size: last?.end ?? 0 }, full);
    for (const { n, records } of found) for (const [id, at] of records) log.remember(id, { ...at, segment: n });
    await log.compact();
    return log;
  }

  has(id: string): boolean {
    return this.index.has(id) || this.unwritten.has(id);
  }

  /** Resolves once the record is on disk (with the others of its batch). */
  append(id: string, text: string, createdMs = this.options.clock()): Promise<void> {
    if (this.has(id)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const pending = { id, text, createdMs, done: (err?: Error) => (err ? reject(err) : resolve()) };
      this.unwritten.set(id, pending);
      this.queue.push(pending);
      this.flushing ??= new Promise<void>((r) => setImmediate(r)).then(() => this.flush());
    });
  }

  async read(id: string): Promise<{ text: string; createdMs: number } | undefined> {
    const pending = this.unwritten.get(id);
    if (pending) return { text: pending.text, createdMs: pending.createdMs };
    const at = this.index.get(id);
    if (!at) return undefined;
    const handle = at.segment === this.active.n ? this.active.handle : await open(path.join(this.dir, segmentName(at.segment)), "r");
    try {
      const buf = Buffer.allocUnsafe(at.bytes);
      const { bytesRead } = await handle.read(buf, 0, at.bytes, at.offset);
      // The caller checks the text against its id, so a damaged record is never served as it.
      return { text: buf.subarray(0, bytesRead).toString("utf8"), createdMs: at.createdMs };
    } finally {
      if (handle !== this.active.handle) await handle.close();
    }
  }

  /** Deletes the segments (never the one being written) whose newest record is past the retention. */
  async compact(): Promise<number> {
    if (this.options.retentionMs <= 0) return 0;
    const cutoff = this.options.clock() - this.options.retentionMs;
    let removed = 0;
    for (const [n, newest] of [...this.newest]) {
      if (n === this.active.n || newest >= cutoff) continue;
      await rm(path.join(this.dir, segmentName(n)), { force: true });
      this.newest.delete(n);
      for (const [id, at] of this.index) if (at.segment === n) this.index.delete(id);
      removed++;
    }
    return removed;
  }

  async close(): Promise<void> {
    clearInterval(this.compactTimer);
    while (this.flushing) await this.flushing;
    await this.active.handle.close();
  }

  /** One write and one fdatasync for everything appended since the last flush. */
  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    try {
      if (this.active.size >= this.options.maxSegmentBytes) await this.rotate();
      const buffers: Buffer[] = [];
      const placed: [Pending, Location][] = [];
      let offset = this.active.size;
      for (const p of batch) {
        const body = Buffer.from(p.text, "utf8");
        const header = Buffer.from(`${p.id} ${p.createdMs} ${body.length} ${checksum(body)}\n`, "latin1");
        placed.push([p, { segment: this.active.n, offset: offset + header.length, bytes: body.length, createdMs: p.createdMs }]);
        buffers.push(header, body, NEWLINE);
        offset += header.length + body.length + 1;
      }
      await this.active.handle.writev(buffers);
      await this.active.handle.datasync();
      this.batchesWritten++;
      this.active.size = offset;
      for (const [p, at] of placed) {
        this.remember(p.id, at);
        this.unwritten.delete(p.id);
        p.done();
      }
    } catch (err) {
      for (const p of batch) {
        this.unwritten.delete(p.id);
        p.done(err as Error);
      }
    } finally {
      // What arrived during this flush is the next batch.
      this.flushing = this.queue.length > 0 ? this.flush() : undefined;
    }
  }

  private async rotate(): Promise<void> {
    await this.active.handle.close();
    const n = this.active.n + 1;
    this.active = { n, handle: await open(path.join(this.dir, segmentName(n)), "a+"), size: 0 };
    await this.compact();
  }

  private remember(id: string, at: Location): void {
    this.index.set(id, at);
    this.newest.set(at.segment, Math.max(this.newest.get(at.segment) ?? 0, at.createdMs));
  }
}

const NEWLINE = Buffer.from("\n");

/**
 * Every whole record of a segment, and where the last whole one ends (a torn
 * tail ends the scan). With `verify`, each record's bytes are read and a
 * record whose checksum fails is passed over; without, only headers are read.
 */
async function scanSegment(file: string, n: number, verify: boolean): Promise<{ records: [string, Location][]; end: number }> {
  const handle = await open(file, "r");
  try {
    const { size } = await handle.stat();
    const records: [string, Location][] = [];
    const head = Buffer.allocUnsafe(HEADER_MAX);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await handle.read(head, 0, HEADER_MAX, at);
      const m = HEADER.exec(head.subarray(0, bytesRead).toString("latin1"));
      if (!m) break;
      const headerBytes = m[0].length;
      const bytes = Number(m[3]);
      if (at + headerBytes + bytes + 1 > size) break;
      const state = verify ? await recordState(handle, at + headerBytes, bytes, m[4]!) : "intact";
      if (state === "torn") break;
      // A record whose bytes changed on disk is passed over; the ones after it are still good.
      if (state === "intact") records.push([m[1]!, { segment: n, offset: at + headerBytes, bytes, createdMs: Number(m[2]) }]);
      at += headerBytes + bytes + 1;
    }
    return { records, end: at };
  } finally {
    await handle.close();
  }
}

/** A record's text: whole with its checksum, whole but changed, or without its closing newline (the tail a crash tore). */
async function recordState(handle: FileHandle, offset: number, bytes: number, sum: string): Promise<"intact" | "damaged" | "torn"> {
  const body = Buffer.allocUnsafe(bytes + 1);
  await handle.read(body, 0, bytes + 1, offset);
  if (body[bytes] !== 0x0a) return "torn";
  return checksum(body.subarray(0, bytes)) === sum ? "intact" : "damaged";
}
