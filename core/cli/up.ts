import { createServer } from "node:net";
import { credentials, Metadata } from "@grpc/grpc-js";
import { API_KEY_ENV } from "../../contracts/runtime/api-key.js";
import { RegistryServiceClient } from "../../contracts/gen/llama_orch/v1/registry.js";
import type { FlagValues } from "./config-file.js";
import { intFlag, stringFlag } from "./flags.js";
import { launchLlorch, stopProcess, type LaunchedProcess } from "./process-launcher.js";

export const UP_FLAGS = ["host", "edge-port", "core-port", "workers", "slots", "tokens-per-second", "engine", "model", "quiet"] as const;

export const upHelp = `llorch up — core, edge and mock worker sidecars on this machine, in one command

Flags (also settable under "up:" in --config; "core:", "edge:" and a "workers:" list
of worker sections are passed to those processes):
  --host H                 address for everything (default 127.0.0.1)
  --edge-port N            public HTTP port (default 8080)
  --core-port N            core gRPC port (default 50051)
  --workers N              mock sidecars to start when the config has no workers: list (default 2)
  --slots N                slots per mock sidecar (default 4)
  --tokens-per-second N    mock decode speed, 0 = as fast as possible (default 25)
  --engine NAME            engine the mock sidecars stand in for (default llamacpp)
  --model REF              model_ref they announce (default mock:tiny; they serve any)
  --quiet                  do not echo the processes' JSON logs
  --config FILE            YAML config file
`;

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

/** Waits until core lists `count` ready replicas, so the printed curl works at once. */
async function waitForReplicas(coreAddress: string, count: number, timeoutMs: number): Promise<void> {
  const client = new RegistryServiceClient(coreAddress, credentials.createInsecure());
  const md = new Metadata();
  const key = process.env[API_KEY_ENV];
  if (key) md.set("authorization", `Bearer ${key}`);
  const until = Date.now() + timeoutMs;
  try {
    for (;;) {
      const ready = await new Promise<number>((resolve) =>
        client.listReplicas({}, md, (err, res) => resolve(err ? 0 : res.replicas.filter((r) => r.ready).length)),
      );
      if (ready >= count) return;
      if (Date.now() > until) throw new Error(`only ${ready} of ${count} worker sidecars became ready within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.close();
  }
}

export async function runUp(flags: FlagValues, file: Record<string, unknown>, toFlags: (s: unknown, where: string) => FlagValues, configPath?: string): Promise<void> {
  // Core and edge read their own sections of the same file (some settings there are structured).
  const configArgs = configPath ? ["--config", configPath] : [];
  const host = stringFlag(flags, "host", "127.0.0.1");
  const quiet = flags["quiet"] === true || flags["quiet"] === "true";
  const echo = quiet ? undefined : (line: string) => process.stdout.write(line + "\n");
  const children: LaunchedProcess[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await Promise.all([...children].reverse().map((c) => stopProcess(c)));
    process.exit(code);
  };
  process.on("SIGINT", () => void stopAll(0));
  process.on("SIGTERM", () => void stopAll(0));
  const watch = (p: LaunchedProcess, essential: boolean) => {
    children.push(p);
    void p.exited.then((code) => {
      if (stopping) return;
      process.stderr.write(`llorch up: ${p.name} exited (${code})${essential ? "; stopping everything" : ""}\n`);
      if (essential) void stopAll(1);
    });
  };
  const argsOf = (f: FlagValues) =>
    Object.entries(f).flatMap(([k, v]) => (v === undefined || v === false ? [] : v === true ? [`--${k}`] : [`--${k}`, v]));

  try {
    const corePort = intFlag(flags, "core-port", 50051, 0, 65535);
    const core = launchLlorch("core", ["core", ...configArgs, ...argsOf({ host, port: String(corePort) })], { onLine: echo, keepLines: false });
    watch(core, true);
    const coreAddress = (await core.ready).address!;

    const workerSections = Array.isArray(file["workers"])
      ? (file["workers"] as unknown[]).map((s, i) => toFlags(s, `workers[${i}]`))
      : Array.from({ length: intFlag(flags, "workers", 2, 1, 64) }, () => ({}) as FlagValues);
    // Sidecars take the next free ports after core's actual port.
    let nextPort = Number(coreAddress.slice(coreAddress.lastIndexOf(":") + 1)) + 1;
    const workers: { address: string; pool: string }[] = [];
    for (const [i, section] of workerSections.entries()) {
      const port = section["port"] ?? String((nextPort = await freePort(host, nextPort)));
      nextPort++;
      const args = argsOf({
        host,
        core: coreAddress,
        pool: "default",
        replica: `default-r${i + 1}`,
        engine: stringFlag(flags, "engine", "llamacpp"),
        model: stringFlag(flags, "model", "mock:tiny"),
        slots: String(intFlag(flags, "slots", 4, 1, 1024)),
        "tokens-per-second": String(intFlag(flags, "tokens-per-second", 25, 0)),
        ...section,
        port,
      });
      const w = launchLlorch(`worker ${i + 1}`, ["worker", ...args], { onLine: echo, keepLines: false });
      watch(w, false);
      workers.push({ address: (await w.ready).address!, pool: String(section["pool"] ?? "default") });
    }

    const edgePort = intFlag(flags, "edge-port", 8080, 0, 65535);
    const edge = launchLlorch("edge", ["edge", ...configArgs, ...argsOf({ host, port: String(edgePort), core: coreAddress })], {
      onLine: echo,
      keepLines: false,
    });
    watch(edge, true);
    const edgeUrl = (await edge.ready).url!;
    await waitForReplicas(coreAddress, workers.length, 15_000);
    process.stdout.write(banner(edgeUrl, coreAddress, workers, stringFlag(flags, "engine", "llamacpp")));
  } catch (err) {
    process.stderr.write(`llorch up failed: ${(err as Error).message}\n`);
    await stopAll(1);
  }
}

function banner(edgeUrl: string, coreAddress: string, workers: { address: string; pool: string }[], engine: string): string {
  const auth = process.env[API_KEY_ENV] ? ` -H "Authorization: Bearer $${API_KEY_ENV}"` : "";
  const body = `{"task_id":"'$ID'","session_id":"'$SID'","workload":"completion","model_ref":"mock:tiny","engine":"${engine}","ctx":4096,"priority":"interactive","seed":42,"prompt":"Tell me about llamas","max_tokens":32,"deadline_ms":30000}`;
  return [
    "",
    "llama-orch is up.",
    `  edge (HTTP API)   ${edgeUrl}        OpenAPI: ${edgeUrl}/openapi.json   metrics: ${edgeUrl}/metrics`,
    `  core (gRPC)       ${coreAddress}`,
    ...workers.map((w, i) => `  worker ${i + 1} (gRPC)   ${w.address}   pool ${w.pool}, mock engine`),
    "",
    "Stream a completion (paste into a shell):",
    "",
    `  ID=$(node -p 'crypto.randomUUID()'); SID=$(node -p 'crypto.randomUUID()'); curl -s -X POST ${edgeUrl}/v1/tasks${auth} -H 'Content-Type: application/json' -d '${body}' && echo && curl -sN${auth} ${edgeUrl}/v1/tasks/$ID/stream`,
    "",
    `Inspect with gRPC reflection:  npx buf curl --protocol grpc --http2-prior-knowledge --list-methods http://${coreAddress}`,
    "Stop with Ctrl-C.",
    "",
  ].join("\n") + "\n";
}
