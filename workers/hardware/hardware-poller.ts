// The owner of what the sidecar knows about its host's GPUs (or RAM, on a CPU
// replica): one reading every few seconds, one tool run at a time, each under
// a timeout, and the devices seen before that are missing now kept as lost.
import { freemem, totalmem } from "node:os";
import { ChangeListeners } from "../change-listeners.js";
import type { GpuDevice, GpuKind } from "./gpu-device.js";
import { detectGpus, readGpus, type GpuReading } from "./gpu-discovery.js";

export interface HardwareSnapshot {
  kind: GpuKind;
  /** "nvidia-smi" or "rocm-smi"; absent on a CPU replica. */
  tool?: string;
  /** What the last reading listed. */
  devices: readonly GpuDevice[];
  /** Devices an earlier reading listed and the last one did not (fallen off the bus, or the tool failed), as last seen. */
  lost: readonly GpuDevice[];
  /** Why the last reading has no devices, when the tool failed. */
  error?: string;
  /** The host's RAM (os.totalmem/freemem): a CPU replica's model memory. */
  ramTotalBytes: number;
  ramFreeBytes: number;
  /** When the reading was taken (epoch ms). */
  at: number;
}

export interface HardwarePollerOptions {
  /** Between the end of one reading and the start of the next; default 5_000. */
  intervalMs?: number;
  /** A tool run slower than this fails the reading; default 10_000 (nvidia-smi can take seconds on a busy host). */
  timeoutMs?: number;
  /** Skip detection: read this kind's tool (or nothing, for "cpu"). */
  kind?: GpuKind;
}

/**
 * Start with `HardwarePoller.start()`, which resolves after the first
 * reading. Listeners hear every reading that differs from the one before in
 * anything but its time (and, on a GPU replica, RAM).
 */
export class HardwarePoller {
  private current: HardwareSnapshot;
  private readonly seen = new Map<string, GpuDevice>();
  private readonly listeners = new ChangeListeners<HardwareSnapshot>();
  private inFlight: Promise<HardwareSnapshot> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  private constructor(
    private readonly kind: GpuKind,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    first: GpuReading,
  ) {
    this.current = this.snapshotOf(first);
  }

  static async start(options: HardwarePollerOptions = {}): Promise<HardwarePoller> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const first = options.kind ? await readOrMissing(options.kind, timeoutMs) : await detectGpus(timeoutMs);
    const poller = new HardwarePoller(first.kind, options.intervalMs ?? 5_000, timeoutMs, first);
    poller.schedule();
    return poller;
  }

  snapshot(): HardwareSnapshot {
    return this.current;
  }

  onChange(listener: (snapshot: HardwareSnapshot) => void): () => void {
    return this.listeners.add(listener);
  }

  /** A reading now; joins the one in flight, if any, rather than running the tool twice at once. */
  refresh(): Promise<HardwareSnapshot> {
    this.inFlight ??= this.read().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.listeners.clear();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.refresh().finally(() => this.schedule()), this.intervalMs);
    // Polling alone must not keep the process alive.
    this.timer.unref();
  }

  private async read(): Promise<HardwareSnapshot> {
    let reading: GpuReading;
    try {
      reading = await readOrMissing(this.kind, this.timeoutMs);
    } catch (err) {
      // Not the tool's failure (those are readings): a bug here must not end the polling.
      reading = { kind: this.kind, devices: [], error: `reading the GPUs failed: ${(err as Error).message}` };
    }
    if (this.stopped) return this.current;
    const next = this.snapshotOf(reading);
    const changed = !sameReading(this.current, next);
    this.current = next;
    if (changed) this.listeners.emit(next);
    return next;
  }

  private snapshotOf(reading: GpuReading): HardwareSnapshot {
    const present = new Set<string>();
    for (const d of reading.devices) {
      present.add(keyOf(d));
      this.seen.set(keyOf(d), d);
    }
    const lost = [...this.seen.entries()].filter(([key]) => !present.has(key)).map(([, d]) => d);
    const snapshot: HardwareSnapshot = {
      kind: reading.kind,
      devices: reading.devices,
      lost,
      ramTotalBytes: totalmem(),
      ramFreeBytes: freemem(),
      at: Date.now(),
    };
    if (reading.tool !== undefined) snapshot.tool = reading.tool;
    if (reading.error !== undefined) snapshot.error = reading.error;
    return snapshot;
  }
}

/** A tool that was there at start and is gone from PATH now is a failed reading, not a change of kind. */
async function readOrMissing(kind: GpuKind, timeoutMs: number): Promise<GpuReading> {
  const reading = await readGpus(kind, timeoutMs);
  if (reading) return reading;
  const tool = kind === "cuda" ? "nvidia-smi" : "rocm-smi";
  return { kind, tool, devices: [], error: `${tool} is not on PATH` };
}

/** The UUID where the tool gives one (indices can shift when a GPU goes away), else the index. */
function keyOf(d: GpuDevice): string {
  return d.uuid !== "" ? d.uuid : `#${d.index}`;
}

function sameReading(a: HardwareSnapshot, b: HardwareSnapshot): boolean {
  const { at: _a, ramTotalBytes: ta, ramFreeBytes: fa, ...restA } = a;
  const { at: _b, ramTotalBytes: tb, ramFreeBytes: fb, ...restB } = b;
  if (a.kind === "cpu" && (ta !== tb || fa !== fb)) return false;
  return JSON.stringify(restA) === JSON.stringify(restB);
}
