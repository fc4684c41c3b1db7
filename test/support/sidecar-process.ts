// One worker sidecar as a real process (the compiled CLI, as `llorch worker`
// runs), without core or edge, and a gRPC client on its WorkerService: for
// tests that call the sidecar directly.
import type { ExecutionContext } from "ava";
import { credentials, Metadata } from "@grpc/grpc-js";
import {
  WorkerServiceClient,
  type HealthResponse,
  type InfoResponse,
  type LoadModelResponse,
  type SubmitRequest,
  type SubmitResponse,
  type WatchHealthResponse,
} from "../../contracts/gen/llama_orch/v1/worker.js";
import { launchLlorch, stopProcess, type LaunchedProcess } from "../../cli/process-launcher.js";
import { LLORCH } from "./system.js";

export interface SidecarProcess {
  proc: LaunchedProcess;
  client: WorkerServiceClient;
  address: string;
  /** Parsed log lines with this `event`. */
  events(event: string): Record<string, unknown>[];
  info(): Promise<InfoResponse>;
  health(): Promise<HealthResponse>;
  loadModel(modelRef: string, expectedDigest?: string): Promise<LoadModelResponse>;
  submit(request: SubmitRequest): Promise<SubmitResponse[]>;
  /** Every WatchHealth message from now until one satisfies `until` (included). */
  watchHealthUntil(until: (m: WatchHealthResponse) => boolean, timeoutMs?: number): Promise<WatchHealthResponse[]>;
}

/** `llorch worker --port 0 <flags>` with `env` added to this process's environment; stopped when the test ends. */
export async function startSidecar(
  t: ExecutionContext,
  flags: Record<string, string>,
  env: NodeJS.ProcessEnv = {},
): Promise<SidecarProcess> {
  const args = ["worker", "--port", "0", ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v])];
  const proc = launchLlorch(`worker ${flags.model ?? ""}`, args, { script: LLORCH, nodeArgs: [], env });
  t.teardown(() => stopProcess(proc));
  const address = (await proc.ready).address!;
  const client = new WorkerServiceClient(address, credentials.createInsecure());
  t.teardown(() => client.close());
  const unary =
    <Res>(call: (cb: (err: Error | null, res: Res) => void) => void) =>
    () =>
      new Promise<Res>((resolve, reject) => call((err, res) => (err ? reject(err) : resolve(res))));
  return {
    proc,
    client,
    address,
    events: (event) => proc.lines.filter((l) => l.includes(`"event":"${event}"`)).map((l) => JSON.parse(l) as Record<string, unknown>),
    info: unary<InfoResponse>((cb) => client.info({}, cb)),
    health: unary<HealthResponse>((cb) => client.health({}, cb)),
    loadModel: (modelRef, expectedDigest = "") =>
      unary<LoadModelResponse>((cb) =>
        client.loadModel({ modelRef, expectedDigest }, new Metadata(), { deadline: Date.now() + 60_000 }, cb),
      )(),
    submit: (request) =>
      new Promise((resolve, reject) => {
        const events: SubmitResponse[] = [];
        const call = client.submit(request);
        call.on("data", (e: SubmitResponse) => events.push(e));
        call.on("error", reject);
        call.on("end", () => resolve(events));
      }),
    watchHealthUntil: (until, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const seen: WatchHealthResponse[] = [];
        const call = client.watchHealth({});
        const timer = setTimeout(() => {
          call.cancel();
          reject(new Error(`WatchHealth: not within ${timeoutMs} ms; saw ${JSON.stringify(seen.slice(-3))}`));
        }, timeoutMs);
        call.on("data", (m: WatchHealthResponse) => {
          seen.push(m);
          if (!until(m)) return;
          clearTimeout(timer);
          call.cancel();
          resolve(seen);
        });
        call.on("error", () => {});
      }),
  };
}
