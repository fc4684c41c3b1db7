import Koa from "koa";
import Router from "@koa/router";
import { loadApiDocuments } from "../contracts/openapi.js";
import type { Logger } from "../contracts/runtime/logger.js";
import type { CoreClient } from "./core-client.js";
import type { EdgeMetrics } from "./metrics.js";
import { MetricsPage } from "./metrics-page.js";
import { prometheusContentType } from "prom-client";
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
  coreLossGraceMs: number;
  rateLimit: RateLimit;
  auth: AuthOptions;
  /** Web page origins allowed to call the API (CORS); empty: none. */
  corsOrigins: readonly string[];
  /** The OpenAI- and Anthropic-compatible APIs' model names and defaults. */
  compat: { models: ModelDirectory; defaultDeadlineMs: number; defaultMaxTokens: number };
  /** Whether the edge still admits tasks, and what its SIGTERM waits for. */
  shutdown: EdgeShutdown;
  /** The edge sits behind a proxy it trusts: the client address is the last X-Forwarded-For hop. */
  trustProxy?: boolean;
}

/** The public HTTP API: cross-cutting middleware once, in order, then routes. */
export function createEdgeApp(opts: EdgeAppOptions): Koa {
  const app = new Koa();
  app.silent = true; // errors are logged by errorEnvelope, with their correlation id
  // Only the hop the trusted proxy appended: whatever a client put before it is its own claim.
  app.proxy = opts.trustProxy === true;
  app.maxIpsCount = 1;
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
  const metricsPage = new MetricsPage(opts.metrics, (timeoutMs) => opts.core.metricsText(timeoutMs));
  router.get("/metrics", async (ctx) => {
    ctx.type = prometheusContentType;
    ctx.body = await metricsPage.text();
  });
  mountHealthRoutes(router, opts);
  mountConsoleRoutes(router);
  // Everything under /v1 needs the API key; the OpenAPI document and metrics stay readable.
  router.use("/v1", apiKeyAuth(opts.auth));
  // Per caller (its key, else its address), after auth so a key's bucket (and its own limit) is its own.
  router.use("/v1", rateLimit(opts.rateLimit));
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
