/**
 * llama-orch as the bench measures it: core, one sidecar whose llama.cpp
 * adapter points at the fake engine, and the edge, each a process of its own
 * from the compiled CLI. Its parties are the three processes; `nodeArgs`
 * reach all three (the profile run passes --cpu-prof).
 */
import { join } from "node:path";
import type { BenchProcesses } from "./bench-procs.js";
import type { Party } from "./proc-stats.js";

export const ORCH_MODEL = "hf:bench/counted-tokens";

export interface OrchStack {
  edgeUrl: string;
  parties: Party[];
  /** Process names by role, for stop and pidOf. */
  names: { edge: string; core: string; sidecar: string };
}

export interface OrchOptions {
  /** Distinguishes the processes of a second stack (the profile run). */
  prefix: string;
  engineUrl: string;
  slots: number;
  transcripts: "on" | "off";
  nodeArgs?: string[];
}

/** The replica is ready once core has it placed: a task admitted before would only queue. */
async function untilPoolReady(edgeUrl: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const res = await fetch(`${edgeUrl}/v1/pools/bench/health`).catch(() => undefined);
    if (res?.status === 200 && ((await res.json()) as { ready: boolean }).ready) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the bench pool did not become ready");
}

export async function startOrch(procs: BenchProcesses, o: OrchOptions): Promise<OrchStack> {
  const names = { core: `${o.prefix}core`, sidecar: `${o.prefix}sidecar`, edge: `${o.prefix}edge` };
  const data = (d: string) => join(procs.logDir, `${o.prefix}${d}`);
  const nodeArgs = o.nodeArgs ?? [];
  const dirs = ["--artifacts-root", data("artifacts"), "--catalog-root", data("catalog"), "--journal-root", data("journal")];
  const core = await procs.launch(
    names.core,
    ["core", "--port", "0", "--queue-capacity", "100000", "--transcripts", o.transcripts, ...dirs],
    nodeArgs,
  );
  await procs.launch(
    names.sidecar,
    [
      "worker",
      "--port",
      "0",
      "--core",
      core.address!,
      "--pool",
      "bench",
      "--replica",
      `${o.prefix}bench-r1`,
      "--engine",
      "llamacpp",
      "--engine-url",
      o.engineUrl,
      "--model",
      ORCH_MODEL,
      "--serves-any-model",
      "false",
      "--slots",
      String(o.slots),
    ],
    nodeArgs,
  );
  const edge = await procs.launch(names.edge, ["edge", "--port", "0", "--core", core.address!], nodeArgs);
  await untilPoolReady(edge.url!);
  const party = (role: keyof typeof names): Party => ({ role, pids: () => [procs.pidOf(names[role])] });
  return { edgeUrl: edge.url!, parties: [party("edge"), party("core"), party("sidecar")], names };
}
