// The metrics contract's per-device GPU series (ci/metrics.lint.json of the
// spec: gpu_utilization and vram_used_bytes, gauges labelled engine,
// engine_version, pool_id, replica_id, device), on a registry the caller
// owns, read at scrape time from the latest hardware snapshot: a device the
// snapshot does not list (gone, or the tool failing) has no sample, and a
// figure the tool does not report is left out rather than sent as 0.
import { Gauge, type Registry } from "prom-client";
import type { GpuDevice } from "./gpu-device.js";
import type { ReplicaLabels } from "../sidecar/metrics.js";

export interface HardwareMetricsSource {
  labels(): ReplicaLabels;
  /** The replica's devices as of now (its mask's, from the poller's last snapshot); none on a CPU replica. */
  devices(): readonly GpuDevice[];
}

const LABELS = ["engine", "engine_version", "pool_id", "replica_id", "device"] as const;

export function registerHardwareMetrics(registry: Registry, source: HardwareMetricsSource): void {
  const registers = [registry];
  new Gauge({
    name: "gpu_utilization",
    help: "Share of the last sample period the GPU was busy, 0..1 (nvidia-smi utilization.gpu, rocm-smi GPU use), per device.",
    labelNames: LABELS,
    registers,
    collect() {
      this.reset();
      for (const d of source.devices()) {
        if (d.utilizationPercent !== undefined) this.set({ ...source.labels(), device: String(d.index) }, d.utilizationPercent / 100);
      }
    },
  });
  new Gauge({
    name: "vram_used_bytes",
    help: "GPU memory in use on the device, every process's, in bytes.",
    labelNames: LABELS,
    registers,
    collect() {
      this.reset();
      for (const d of source.devices()) {
        if (d.memoryUsedBytes !== undefined) this.set({ ...source.labels(), device: String(d.index) }, d.memoryUsedBytes);
      }
    },
  });
}
