import { mkdtempSync, rmSync } from "node:fs";
import type { ChannelCredentials } from "@grpc/grpc-js";
import type { ReplicaStatus } from "../../contracts/gen/llama_orch/v1/registry.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchLlorch, stopProcess, type LaunchedProcess } from "../../cli/process-launcher.js";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { listReplicas } from "./grpc.js";

/** The compiled CLI: integration tests run the real build, as users do (npm test builds first). */
export const LLORCH = join(projectRoot(), "dist", "cli", "llorch.js");

export interface WorkerSpec {
  pool?: string;
  replica?: string;
  slots?: number;
  tokensPerSecond?: number;
  engine?: string;
  model?: string;
  /** Extra flags, e.g. { "fail-after": "3" }. */
  flags?: Record<string, string>;
  /** Extra environment for this sidecar's process (e.g. a PATH with a fake nvidia-smi). */
  env?: NodeJS.ProcessEnv;
  /** The command this sidecar runs under (e.g. `ip netns exec <ns>`, another "host"). */
  wrap?: string[];
}

export interface SystemOptions {
  coreFlags?: Record<string, string>;
  /** Extra environment for core's process (e.g. HF_ENDPOINT, which names the model cache's entries). */
  coreEnv?: NodeJS.ProcessEnv;
  edgeFlags?: Record<string, string>;
  workers: WorkerSpec[];
  /** Extra environment for the edge's process (e.g. its LLORCH_KEY). */
  edgeEnv?: NodeJS.ProcessEnv;
  /** LLORCH_API_KEY for every process (core and edge require it; workers present it). */
  apiKey?: string;
  /** The key and channel credentials the test itself asks core with (ListReplicas); default the API key, plaintext. */
  ops?: { key?: string; credentials?: ChannelCredentials };
  /** The commands core and the edge run under (e.g. `ip netns exec <ns>`: each on a "host" of its own). */
  wrap?: { core?: string[]; edge?: string[] };
}

export interface WorkerHandle {
  spec: WorkerSpec;
  replica: string;
  proc: LaunchedProcess;
  address: string;
}

/**
 * Tests stop their systems with work still running; a shutdown grace would
 * only make each teardown wait (SIGTERM drains). Tests of the drain set their own.
 */
const NO_SHUTDOWN_GRACE = { "shutdown-grace-ms": "0" };

/** Flags as arguments; an empty string value is a bare switch (e.g. `--auth-optional`). */
function toArgs(flags: Record<string, string | number | undefined>): string[] {
  return Object.entries(flags).flatMap(([k, v]) => (v === undefined ? [] : v === "" ? [`--${k}`] : [`--${k}`, String(v)]));
}

/**
 * Core, worker sidecars and edge as real processes on ephemeral loopback
 * ports, started from the compiled CLI exactly as `llorch` would.
 */
export class TestSystem {
  core!: LaunchedProcess;
  coreAddress = "";
  /** host:port of core's /metrics when started with --metrics-port. */
  coreMetricsAddress: string | undefined;
  edge!: LaunchedProcess;
  edgeUrl = "";
  readonly workers: WorkerHandle[] = [];
  private corePort = 0;

  constructor(private readonly opts: SystemOptions) {}

  static async start(opts: SystemOptions): Promise<TestSystem> {
    const sys = new TestSystem(opts);
    try {
      await sys.startCore();
      await Promise.all(opts.workers.map((w, i) => sys.startWorker(w, w.replica ?? `r${i + 1}`)));
      await sys.startEdge();
      await sys.waitForReadyReplicas(opts.workers.length);
    } catch (err) {
      await sys.stop();
      throw err;
    }
    return sys;
  }

  private env(): NodeJS.ProcessEnv {
    return this.opts.apiKey ? { LLORCH_API_KEY: this.opts.apiKey } : {};
  }

  /** Each system keeps its catalog, artifacts and task journal in a directory of its own (kept across a core restart). */
  readonly dataDir = mkdtempSync(join(tmpdir(), "llorch-test-"));

  async startCore(): Promise<void> {
    const data = {
      "catalog-root": join(this.dataDir, "catalog"),
      "artifacts-root": join(this.dataDir, "artifacts"),
      "journal-root": join(this.dataDir, "journal"),
    };
    this.core = launchLlorch("core", ["core", ...toArgs({ port: this.corePort, ...NO_SHUTDOWN_GRACE, ...data, ...this.opts.coreFlags })], {
      script: LLORCH,
      nodeArgs: [],
      env: { ...this.env(), ...this.opts.coreEnv },
      wrap: this.opts.wrap?.core,
    });
    const ready = await this.core.ready;
    this.coreAddress = ready.address!;
    this.coreMetricsAddress = ready.metrics_address;
    this.corePort = Number(this.coreAddress.split(":").pop());
  }

  async startEdge(): Promise<void> {
    this.edge = launchLlorch(
      "edge",
      ["edge", ...toArgs({ port: 0, core: this.coreAddress, ...NO_SHUTDOWN_GRACE, ...this.opts.edgeFlags })],
      {
        script: LLORCH,
        nodeArgs: [],
        env: { ...this.env(), ...this.opts.edgeEnv },
        wrap: this.opts.wrap?.edge,
      },
    );
    this.edgeUrl = (await this.edge.ready).url!;
  }

  async startWorker(spec: WorkerSpec, replica: string, port = 0): Promise<WorkerHandle> {
    const proc = launchLlorch(
      `worker ${replica}`,
      [
        "worker",
        ...toArgs({
          port,
          core: this.coreAddress,
          pool: spec.pool ?? "default",
          replica,
          slots: spec.slots ?? 2,
          "tokens-per-second": spec.tokensPerSecond ?? 0,
          engine: spec.engine ?? "llamacpp",
          model: spec.model ?? "mock:tiny",
          ...NO_SHUTDOWN_GRACE,
          ...spec.flags,
        }),
      ],
      { script: LLORCH, nodeArgs: [], env: { ...this.env(), ...spec.env }, wrap: spec.wrap },
    );
    const address = (await proc.ready).address!;
    const handle = { spec, replica, proc, address };
    const i = this.workers.findIndex((w) => w.replica === replica);
    if (i >= 0) this.workers[i] = handle;
    else this.workers.push(handle);
    return handle;
  }

  worker(replica: string): WorkerHandle {
    const w = this.workers.find((x) => x.replica === replica);
    if (!w) throw new Error(`no worker ${replica}`);
    return w;
  }

  /** SIGKILL: the process gets no chance to say goodbye. */
  async killWorker(replica: string): Promise<void> {
    const w = this.worker(replica);
    w.proc.child.kill("SIGKILL");
    await w.proc.exited;
  }

  async restartWorker(replica: string): Promise<WorkerHandle> {
    const w = this.worker(replica);
    const port = Number(w.address.split(":").pop());
    return this.startWorker(w.spec, replica, port);
  }

  async killCore(): Promise<void> {
    this.core.child.kill("SIGKILL");
    await this.core.exited;
  }

  /** Restarts core on the same port and data directory (catalog, artifacts, task journal), so sidecars and edge find it again on their own. */
  async restartCore(): Promise<void> {
    await this.startCore();
  }

  /** SIGSTOP: core hangs with its sockets open, as a machine that stalls does. */
  pauseCore(): void {
    this.core.child.kill("SIGSTOP");
  }

  resumeCore(): void {
    this.core.child.kill("SIGCONT");
  }

  async waitForReadyReplicas(count: number, timeoutMs = 15_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const replicas = await this.replicas().catch(() => []);
      if (replicas.filter((r) => r.ready).length >= count) return;
      if (Date.now() > until) throw new Error(`only ${replicas.filter((r) => r.ready).length}/${count} replicas ready`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** What core's registry holds now, asked as the test's operator (`ops`). */
  replicas(): Promise<ReplicaStatus[]> {
    return listReplicas(this.coreAddress, this.opts.ops?.key ?? this.opts.apiKey, this.opts.ops?.credentials);
  }

  /** Every log line every process printed (for redaction and field checks). */
  allLogLines(): string[] {
    return [this.core, this.edge, ...this.workers.map((w) => w.proc)].flatMap((p) => p?.lines ?? []);
  }

  /** Parsed log lines of one process that mention `text`. */
  logsOf(p: LaunchedProcess, text: string): Record<string, unknown>[] {
    return p.lines.filter((l) => l.includes(text)).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async stop(): Promise<void> {
    await Promise.all([this.edge, ...this.workers.map((w) => w.proc), this.core].filter(Boolean).map((p) => stopProcess(p)));
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
