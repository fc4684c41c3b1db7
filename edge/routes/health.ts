import type Router from "@koa/router";
import type { ListPoolsResponse } from "../../contracts/gen/llama_orch/v1/pool.js";
import type { CoreClient } from "../core-client.js";
import { Readiness } from "../readiness.js";
import type { EdgeShutdown } from "../shutdown.js";

/** A probe must not hang on a core that stopped answering. */
const PROBE_DEADLINE_MS = 2_000;

/**
 * Probes for load balancers, outside /v1 so they need no API key: /healthz
 * says the edge serves HTTP, /readyz that tasks can be taken (core's answer
 * reused for a second). Neither reads a body.
 */
export function mountHealthRoutes(router: Router, { core, shutdown }: { core: CoreClient; shutdown: EdgeShutdown }): void {
  const readiness = new Readiness(() =>
    core.call<ListPoolsResponse>({ correlationId: "readyz" }, (md, _o, cb) =>
      core.pools.listPools({}, md, { deadline: Date.now() + PROBE_DEADLINE_MS }, cb),
    ),
  );

  router.get("/healthz", (ctx) => {
    ctx.body = { status: "ok" };
  });

  router.get("/readyz", async (ctx) => {
    // A draining edge sends load balancers elsewhere, whatever core says.
    shutdown.assertReady();
    const answer = await readiness.check();
    if (!answer.ready) throw answer.error;
    ctx.body = { status: "ready", pools_ready: answer.poolsReady, replicas_ready: answer.replicasReady };
  });
}
