// What one sidecar knows of the memory its engine runs in: the host's GPUs
// polled through nvidia-smi or rocm-smi (RAM on a CPU replica), narrowed to
// the replica's --device-mask. Info, props, placement's VRAM figures, the
// engine's environment and the GPU metrics all read it from here.
import type { Logger } from "../../contracts/runtime/logger.js";
import { ChangeListeners } from "../change-listeners.js";
import {
  engineEnvironment,
  maskedMemory,
  parseDeviceMask,
  resolveDeviceMask,
  type MaskedMemory,
  type ResolvedMask,
} from "../hardware/device-mask.js";
import type { GpuDevice } from "../hardware/gpu-device.js";
import { HardwarePoller, type HardwareSnapshot } from "../hardware/hardware-poller.js";

export interface ReplicaHardwareOptions {
  /** --device-mask as given; empty or undefined: every device found (or the CPU). */
  deviceMask?: string;
  pollIntervalMs?: number;
}

export class ReplicaHardware {
  private readonly listeners = new ChangeListeners<MaskedMemory>();
  private memoryNow: MaskedMemory;

  private constructor(
    private readonly poller: HardwarePoller,
    readonly mask: ResolvedMask,
    logger: Logger,
  ) {
    this.memoryNow = maskedMemory(mask, poller.snapshot());
    poller.onChange((snapshot) => this.update(snapshot, logger));
  }

  /** Reads the hardware once and resolves the mask against it; a mask naming a device that is not there throws DeviceMaskError. */
  static async start(options: ReplicaHardwareOptions, logger: Logger): Promise<ReplicaHardware> {
    const poller = await HardwarePoller.start({ intervalMs: options.pollIntervalMs });
    try {
      const mask = resolveDeviceMask(parseDeviceMask(options.deviceMask ?? ""), poller.snapshot());
      const hardware = new ReplicaHardware(poller, mask, logger);
      const m = hardware.memoryNow;
      logger.info(
        {
          event: "hardware",
          kind: mask.kind,
          device_mask: mask.text,
          memory_total_bytes: m.totalBytes,
          memory_free_bytes: m.freeBytes,
          incomplete: m.incomplete,
        },
        mask.kind === "cpu"
          ? `no GPU found (neither nvidia-smi nor rocm-smi): a CPU replica with ${gib(m.totalBytes)} of RAM, ${gib(m.freeBytes)} free`
          : `GPU ${mask.text}: ${m.devices.map((d) => d.name).join(", ")}; ${gib(m.freeBytes)} of ${gib(m.totalBytes)} free`,
      );
      return hardware;
    } catch (err) {
      poller.stop();
      throw err;
    }
  }

  /** The replica's memory now: its devices' VRAM, or the host's RAM on a CPU replica. */
  memory(): MaskedMemory {
    return this.memoryNow;
  }

  /** The replica's GPUs as last read (none on a CPU replica): the per-device metrics. */
  devices(): readonly GpuDevice[] {
    return this.memoryNow.devices;
  }

  snapshot(): HardwareSnapshot {
    return this.poller.snapshot();
  }

  /** What a supervised engine (or the embedded runtime) must see: CUDA_VISIBLE_DEVICES or its ROCm equivalent for the mask. */
  engineEnvironment(): Record<string, string | undefined> {
    return engineEnvironment(this.mask);
  }

  /** Hears every change of the replica's memory figures (free VRAM moving, a GPU going away). */
  onChange(listener: (memory: MaskedMemory) => void): () => void {
    return this.listeners.add(listener);
  }

  stop(): void {
    this.poller.stop();
    this.listeners.clear();
  }

  private update(snapshot: HardwareSnapshot, logger: Logger): void {
    const before = this.memoryNow;
    this.memoryNow = maskedMemory(this.mask, snapshot);
    if (this.memoryNow.missing.length > before.missing.length) {
      logger.warn(
        { event: "gpu_lost", missing: this.memoryNow.missing, reason: this.memoryNow.incomplete },
        `GPU ${this.memoryNow.missing.join(", ")} of this replica is gone`,
      );
    }
    this.listeners.emit(this.memoryNow);
  }
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}
