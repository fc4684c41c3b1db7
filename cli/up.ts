import { createServer } from "node:net";
import { dirname } from "node:path";
import { credentials, Metadata } from "@grpc/grpc-js";
import { Workload } from "../contracts/gen/llama_orch/v1/common.js";
import { RegistryServiceClient, type ReplicaStatus } from "../contracts/gen/llama_orch/v1/registry.js";
import { engines } from "../contracts/enums.js";
import { localPathOf, parseModelRef } from "../contracts/model-ref.js";
import { API_KEY_ENV } from "../contracts/runtime/api-key.js";
import { sectionFlags } from "../contracts/runtime/config-file.js";
import type { FlagValues } from "../contracts/runtime/flag-table.js";
import { resolveLogFormat } from "../contracts/runtime/log-format.js";
import { DEFAULT_SHUTDOWN_GRACE_MS } from "../contracts/runtime/shutdown-grace.js";
import { onParentGone } from "./parent-watch.js";
import { ProcessGroup } from "./process-group.js";
import { upConfigFromFlags, type UpConfig } from "./up-config.js";

// `llorch up` runs every component as its own `llorch <component>` process, so
// it needs none of their code: only their flags, passed on the command line.

type Echo = ((line: string) => void) | undefined;

/** How long `up` waits for every sidecar to be Ready (loading a real model included). */
const READY_TIMEOUT_MS = 120_000;

interface StartedWorker {
  address: string;
  pool: string;
  /** host:port of its GET /metrics. */
  metrics?: string;
}

/** Starts core, the sidecars and the edge, waits until the sidecars are ready and prints how to use them. */
export async function runUp(flags: FlagValues, file: Record<string, unknown>, configPath?: string): Promise<void> {
  const group = new ProcessGroup((code) => process.exit(code), longestShutdownGraceMs(file) + 5_000);
  // Ctrl-C reaches every process of the terminal's group: each drains; a second Ctrl-C ends them at once.
  process.on("SIGINT", () => void group.stopAll(0));
  process.on("SIGTERM", () => void group.stopAll(0));
  onParentGone(() => void group.stopAll(0));
  try {
    const config = upConfigFromFlags(flags);
    // The children write to pipes, so on their own they would pick JSON: they write what this terminal (or pipe) wants.
    config.logFormat = resolveLogFormat(config.logFormat);
    const sections = workerSections(file, config);
    const echo: Echo = config.quiet ? undefined : (line) => process.stdout.write(line + "\n");
    // Core and edge read their own sections of the same file (some settings there are structured).
    const configArgs = [...(configPath ? ["--config", configPath] : []), "--log-format", config.logFormat];
    // Core's metrics take the first free port at or after --metrics-port, the sidecars' the next ones (unless the file sets them).
    const metricsPorts = portSequence(config.host, config.metricsPort);
    const coreMetricsPort = setsFlag(file["core"], "metrics-port") ? undefined : await metricsPorts();
    const coreFlags = {
      host: config.host,
      port: String(config.corePort),
      "metrics-port": coreMetricsPort,
      "model-roots": modelRootsOf(file, config, sections),
    };
    const core = group.launch("core", ["core", ...configArgs, ...argsOf(coreFlags)], { essential: true, onLine: echo });
    const coreReady = await core.ready;
    const coreAddress = coreReady.address!;
    const workers = await startWorkers(group, config, sections, { coreAddress, metricsPorts }, echo);
    const edgeArgs = argsOf({ host: config.host, port: String(config.edgePort), core: coreAddress });
    const edge = group.launch("edge", ["edge", ...configArgs, ...edgeArgs], { essential: true, onLine: echo });
    const edgeUrl = (await edge.ready).url!;
    // A real model can take a while to load; the mock is ready at once.
    const replicas = await waitForReplicas(coreAddress, workers.length, READY_TIMEOUT_MS);
    process.stdout.write(banner(edgeUrl, { grpc: coreAddress, metrics: coreReady.metrics_address }, workers, replicas));
  } catch (err) {
    process.stderr.write(`llorch up failed: ${(err as Error).message}\n`);
    await group.stopAll(1);
  }
}

/** The longest --shutdown-grace-ms any process up starts was given in the config file (the default where none). */
function longestShutdownGraceMs(file: Record<string, unknown>): number {
  const sections = [file["core"], file["edge"], ...(Array.isArray(file["workers"]) ? (file["workers"] as unknown[]) : [])];
  const graces = sections.map((s) =>
    Number((s as Record<string, unknown> | undefined)?.["shutdown-grace-ms"] ?? DEFAULT_SHUTDOWN_GRACE_MS),
  );
  return Math.max(DEFAULT_SHUTDOWN_GRACE_MS, ...graces.filter((g) => Number.isFinite(g)));
}

/**
 * The directories of the local model files up's sidecars serve, with the
 * config file's own core.model-roots (which the flag would otherwise
 * replace): catalog verify reads nothing else but the model cache.
 */
function modelRootsOf(file: Record<string, unknown>, config: UpConfig, sections: FlagValues[]): string | undefined {
  const configured = (file["core"] as Record<string, unknown> | undefined)?.["model-roots"];
  const dirs = new Set(typeof configured === "string" ? configured.split(",").map((d) => d.trim()) : []);
  for (const model of [config.model, ...sections.map((s) => s["model"])]) {
    if (typeof model !== "string") continue;
    try {
      const local = localPathOf(parseModelRef(model), process.cwd());
      if (local !== undefined) dirs.add(dirname(local));
    } catch {
      // Not a model_ref the sidecar will take either; it says so itself.
    }
  }
  dirs.delete("");
  return dirs.size > 0 ? [...dirs].join(",") : undefined;
}

/** One flag set per sidecar: the config file's `workers:` list, else `--workers` sidecars with the defaults. */
function workerSections(file: Record<string, unknown>, config: UpConfig): FlagValues[] {
  if (Array.isArray(file["workers"])) return (file["workers"] as unknown[]).map((s, i) => sectionFlags(s, `workers[${i}]`));
  return Array.from({ length: config.workers }, () => ({}));
}

async function startWorkers(
  group: ProcessGroup,
  config: UpConfig,
  sections: FlagValues[],
  { coreAddress, metricsPorts }: { coreAddress: string; metricsPorts: () => Promise<string> },
  echo: Echo,
): Promise<StartedWorker[]> {
  // Sidecars take the next free ports after core's actual port.
  const grpcPorts = portSequence(config.host, portOf(coreAddress) + 1);
  const workers: StartedWorker[] = [];
  for (const [i, section] of sections.entries()) {
    const port = section["port"] ?? (await grpcPorts());
    const metricsPort = section["metrics-port"] ?? (await metricsPorts());
    const args = argsOf({
      host: config.host,
      core: coreAddress,
      pool: "default",
      replica: `default-r${i + 1}`,
      engine: config.engine,
      model: config.model,
      slots: String(config.slots),
      "tokens-per-second": String(config.tokensPerSecond),
      threads: config.threads === undefined ? undefined : String(config.threads),
      "metrics-host": config.host,
      "log-format": config.logFormat,
      ...section,
      port,
      "metrics-port": metricsPort,
    });
    const worker = group.launch(`worker ${i + 1}`, ["worker", ...args], { essential: false, onLine: echo });
    const ready = await worker.ready;
    workers.push({ address: ready.address!, pool: String(section["pool"] ?? "default"), metrics: ready.metrics_address });
  }
  return workers;
}

interface CoreAddresses {
  grpc: string;
  /** host:port of core's GET /metrics. */
  metrics?: string;
}

/** Whether a section of the config file sets a flag itself. */
function setsFlag(section: unknown, flag: string): boolean {
  return typeof section === "object" && section !== null && flag in section;
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(":") + 1));
}

/** Flag values as arguments; a switch that is off is left out. */
function argsOf(flags: FlagValues): string[] {
  return Object.entries(flags).flatMap(([k, v]) => (v === undefined || v === false ? [] : v === true ? [`--${k}`] : [`--${k}`, v]));
}

/** Free ports one after another from `from` on `host`; from 0, ephemeral ports throughout. */
function portSequence(host: string, from: number): () => Promise<string> {
  let next = from;
  return async () => {
    if (next === 0) return "0";
    const port = await freePort(host, next);
    next = port + 1;
    return String(port);
  };
}

/** Finds a free TCP port at or after `from` on `host`. */
async function freePort(host: string, from: number): Promise<number> {
  for (let port = from; port < from + 200; port++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, host, () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error(`no free port in ${from}..${from + 199} on ${host}`);
}

/** Waits until core lists `count` ready replicas, so the printed curl works at once; returns what they serve. */
async function waitForReplicas(coreAddress: string, count: number, timeoutMs: number): Promise<ReplicaStatus[]> {
  const client = new RegistryServiceClient(coreAddress, credentials.createInsecure());
  const md = new Metadata();
  const key = process.env[API_KEY_ENV];
  if (key) md.set("authorization", `Bearer ${key}`);
  const until = Date.now() + timeoutMs;
  try {
    for (;;) {
      const ready = await new Promise<ReplicaStatus[]>((resolve) =>
        client.listReplicas({}, md, (err, res) => resolve(err ? [] : res.replicas.filter((r) => r.ready))),
      );
      if (ready.length >= count) return ready;
      if (Date.now() > until) throw new Error(`only ${ready.length} of ${count} worker sidecars became ready within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.close();
  }
}

/** The request the banner's curl sends: one the serving model can run (completion, else embedding, else rerank). */
function exampleTask(replica: ReplicaStatus | undefined): string {
  const engine = replica ? engines.name(replica.engine) : "llamacpp";
  const common = `"task_id":"'$ID'","session_id":"'$SID'","model_ref":${JSON.stringify(replica?.modelRef ?? "mock:tiny")},"engine":"${engine}","ctx":1024,"priority":"interactive","max_tokens":32,"deadline_ms":30000`;
  const serves = (w: Workload) => replica === undefined || replica.workloads.length === 0 || replica.workloads.includes(w);
  if (serves(Workload.WORKLOAD_COMPLETION)) return `{${common},"workload":"completion","seed":42,"prompt":"Tell me about llamas"}`;
  if (serves(Workload.WORKLOAD_EMBEDDING)) return `{${common},"workload":"embedding","inputs":["a llama","an alpaca"]}`;
  return `{${common},"workload":"rerank","prompt":"llamas","inputs":["a llama grazes","the stock market fell"]}`;
}

function workerLine(w: StartedWorker, i: number, replicas: ReplicaStatus[]): string {
  const r = replicas.find((x) => x.address === w.address);
  const serving = r === undefined ? "" : r.adapter === "mock" ? ", mock engine" : `, ${r.engineVersion || r.adapter} serving ${r.modelRef}`;
  return `  worker ${i + 1} (gRPC)   ${w.address}   pool ${w.pool}${serving}${metricsOf(w.metrics)}`;
}

const metricsOf = (address: string | undefined) => (address ? `   metrics: http://${address}/metrics` : "");

function banner(edgeUrl: string, core: CoreAddresses, workers: StartedWorker[], replicas: ReplicaStatus[]): string {
  const coreAddress = core.grpc;
  const auth = process.env[API_KEY_ENV] ? ` -H "Authorization: Bearer $${API_KEY_ENV}"` : "";
  const body = exampleTask(replicas[0]);
  const what = body.includes('"workload":"completion"')
    ? "a completion"
    : body.includes('"workload":"embedding"')
      ? "embeddings"
      : "rerank scores";
  return (
    [
      "",
      "llama-orch is up.",
      `  edge (HTTP API)   ${edgeUrl}        OpenAPI: ${edgeUrl}/openapi.json   metrics: ${edgeUrl}/metrics (the edge's and core's)`,
      `  core (gRPC)       ${coreAddress}${metricsOf(core.metrics)}`,
      ...workers.map((w, i) => workerLine(w, i, replicas)),
      "",
      `Stream ${what} (paste into a shell):`,
      "",
      `  ID=$(node -p 'crypto.randomUUID()'); SID=$(node -p 'crypto.randomUUID()'); curl -s -X POST ${edgeUrl}/v1/tasks${auth} -H 'Content-Type: application/json' -d '${body}' && echo && curl -sN${auth} ${edgeUrl}/v1/tasks/$ID/stream`,
      "",
      "Prometheus and Grafana: deploy/prometheus/prometheus.yml scrapes the default ports; deploy/grafana/llama-orch.json is a dashboard on it.",
      `Inspect with gRPC reflection:  npx buf curl --protocol grpc --http2-prior-knowledge --list-methods http://${coreAddress}`,
      "Stop with Ctrl-C (running tasks get to finish; press it again to stop at once).",
      "",
    ].join("\n") + "\n"
  );
}
