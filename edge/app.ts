import Koa from "koa";
import Router from "@koa/router";
import { loadApiDocuments } from "../contracts/openapi.js";
import type { Logger } from "../contracts/runtime/logger.js";
import type { CoreClient } from "./core-client.js";
import type { EdgeMetrics } from "./metrics.js";
import { correlationId } from "./middleware/correlation-id.js";
import { errorEnvelope } from "./middleware/error-envelope.js";
import { mountTaskRoutes } from "./routes/tasks.js";
import { mountSessionRoutes } from "./routes/sessions.js";
import { mountControlRoutes } from "./routes/control.js";
import { mountConsoleRoutes } from "./routes/console.js";
import { mountHealthRoutes } from "./routes/health.js";
import { mountListingRoutes } from "./routes/listings.js";
import { rateLimit, type RateLimit } from "./middleware/rate-limit.js";
import { apiKeyAuth, type AuthOptions } from "./middleware/api-key-auth.js";
import { cors } from "./middleware/cors.js";
import { compatErrors } from "./compat/compat-errors.js";
import { mountCompatRoutes } from "./compat/compat-routes.js";
import type { ModelDirectory } from "./compat/model-directory.js";
import type { EdgeShutdown } from "./shutdown.js";

export interface EdgeAppOptions {
  core: CoreClient;
  logger: Logger;
  metrics: EdgeMetrics;
  bodyLimitBytes: number;
  /** Deepest nesting of arrays and objects a JSON body may have. */
  jsonMaxDepth: number;
  sseHeartbeatMs: number;
  rateLimit: RateLimit;
  auth: AuthOptions;
  /** Web page origins allowed to call the API (CORS); empty: none. */
  corsOrigins: readonly string[];
  /** The OpenAI- and Anthropic-compatible APIs' model names and defaults. */
  compat: { models: ModelDirectory; defaultDeadlineMs: number; defaultMaxTokens: number };
  /** Whether the edge still admits tasks, and what its SIGTERM waits for. */
  shutdown: EdgeShutdown;
}

/** The public HTTP API: cross-cutting middleware once, in order, then routes. */
export function createEdgeApp(opts: EdgeAppOptions): Koa {
  const app = new Koa();
  app.silent = true; // errors are logged by errorEnvelope, with their correlation id
  const router = new Router();

  app.use(correlationId());
  app.use(opts.shutdown.counting());
  app.use(requestAccounting(opts));
  app.use(errorEnvelope(opts.logger));
  // Before the router: a preflight is answered here, without the API key it never carries.
  if (opts.corsOrigins.length > 0) app.use(cors(opts.corsOrigins));
  app.use(compatErrors(opts.logger));

  router.get("/openapi.json", (ctx) => {
    ctx.body = loadApiDocuments().merged;
  });
  router.get("/metrics", async (ctx) => {
    ctx.type = opts.metrics.registry.contentType;
    ctx.body = await opts.metrics.registry.metrics();
  });
  mountHealthRoutes(router, opts);
  mountConsoleRoutes(router);
  // Everything under /v1 needs the API key; the OpenAPI document and metrics stay readable.
  router.use("/v1", apiKeyAuth(opts.auth));
  // Per caller (API key, else address), after auth so a key's bucket is its own.
  if (opts.rateLimit.perSecond > 0) router.use("/v1", rateLimit(opts.rateLimit));
  mountTaskRoutes(router, opts);
  mountSessionRoutes(router, opts);
  mountControlRoutes(router, opts);
  mountListingRoutes(router, opts);
  mountCompatRoutes(router, { ...opts, ...opts.compat });

  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** Counts each answered request by its route template (bounded label values). */
function requestAccounting(opts: EdgeAppOptions): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } finally {
      const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? "unmatched";
      const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
      opts.metrics.httpRequests.inc({ method: ctx.method, route: String(route), status: String(status) });
    }
  };
}
