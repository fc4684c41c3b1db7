/**
 * The three setups the bench puts side by side, each a way for a client to
 * get a stream of N counted tokens from the same fake engine, and the
 * processes to charge for it:
 *   - direct: the engine itself (nothing in between, nothing to charge);
 *   - nginx: nginx in front of the engine;
 *   - llama-orch: edge → core → sidecar (llama.cpp adapter) → engine.
 * Every stream is checked; the verdicts go to the run's ledger.
 */
import http from "node:http";
import { taskBody } from "../support/task-body.js";
import type { ExactnessLedger } from "./exactness.js";
import type { NginxProxy } from "./nginx-proxy.js";
import { ORCH_MODEL, type OrchStack } from "./orch-stack.js";
import type { Party } from "./proc-stats.js";
import { engineStream, taskStream, type StreamOptions, type StreamResult } from "./stream-client.js";

export type SetupName = "direct" | "nginx" | "llama-orch";

export interface Setup {
  name: SetupName;
  /** What the setup adds between client and engine; empty for direct. */
  parties: Party[];
  stream(n: number, opts?: StreamOptions): Promise<StreamResult>;
  /** Ends the work behind streams the bench closed on purpose, so it frees the engine's slots now. */
  release(): Promise<void>;
}

/** Context for the longest stream plus the prompt. */
export const TASK_CTX = 4_096;

function checked(name: SetupName, ledger: ExactnessLedger, run: (n: number, opts?: StreamOptions) => Promise<StreamResult>) {
  return async (n: number, opts?: StreamOptions) => {
    const r = await run(n, opts);
    ledger.record(name, r.problem);
    return r;
  };
}

export function directSetup(engineUrl: string, ledger: ExactnessLedger): Setup {
  return {
    name: "direct",
    parties: [],
    stream: checked("direct", ledger, (n, o) => engineStream(engineUrl, n, o)),
    release: async () => {},
  };
}

export function nginxSetup(nginx: NginxProxy, ledger: ExactnessLedger): Setup {
  return {
    name: "nginx",
    parties: [nginx.party],
    stream: checked("nginx", ledger, (n, o) => engineStream(nginx.url, n, o)),
    release: async () => {},
  };
}

function cancel(edgeUrl: string, taskId: string): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(`${edgeUrl}/v1/tasks/${taskId}/cancel`, { method: "POST" }, (res) => res.resume().on("end", resolve));
    req.on("error", () => resolve());
    req.end();
  });
}

export function orchSetup(stack: OrchStack, ledger: ExactnessLedger): Setup {
  const aborted: string[] = [];
  const run = (n: number, o: StreamOptions = {}) => {
    const body = taskBody({ model_ref: ORCH_MODEL, engine: "llamacpp", max_tokens: n, ctx: TASK_CTX, prompt: "benchmark prompt", seed: 1 });
    if (o.signal) aborted.push(body.task_id as string);
    return taskStream(stack.edgeUrl, n, body, o);
  };
  return {
    name: "llama-orch",
    parties: stack.parties,
    stream: checked("llama-orch", ledger, run),
    release: async () => {
      // A client that leaves does not end its task at once (core waits its disconnect grace for a new watcher): cancel says it is over.
      const ids = aborted.splice(0);
      for (let i = 0; i < ids.length; i += 100) await Promise.all(ids.slice(i, i + 100).map((id) => cancel(stack.edgeUrl, id)));
    },
  };
}
