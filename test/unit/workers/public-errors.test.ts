import test, { type ExecutionContext } from "ava";
import { Metadata } from "@grpc/grpc-js";
import type { WorkerServiceClient, WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { Logger } from "../../../contracts/runtime/logger.js";
import type { EngineAdapter } from "../../../workers/engine-adapter.js";
import { failureOf } from "../../../workers/http/engine-errors.js";
import { MockEngine } from "../../../workers/mock/mock-engine.js";
import { basicMockAdapter } from "./mock-adapter.js";
import { drain, health, logCapture, submitRequest } from "./helpers.js";
import { serveWorkerService } from "./worker-service-harness.js";

// What leaves the sidecar for core (and so for clients) is public text: the
// engine's address and Node's socket error stay in the sidecar's log.

const ENGINE = "127.0.0.1:8081";
const refused = () => Object.assign(new Error(`connect ECONNREFUSED ${ENGINE}`), { code: "ECONNREFUSED" });

/** A WorkerService over the mock, with the generation and health `patch` gives it. */
async function serve(t: ExecutionContext, patch: Partial<EngineAdapter>, logger: Logger): Promise<WorkerServiceClient> {
  const engine = new MockEngine();
  await engine.start();
  return serveWorkerService(t, basicMockAdapter(engine, patch), logger);
}

function lastError(events: Awaited<ReturnType<typeof drain>>) {
  const last = (events.at(-1) as { event?: { $case: string; error?: { message: string } } }).event;
  return last?.$case === "error" ? last.error : undefined;
}

test("an engine that refuses the connection fails the task in words, and the log keeps the address with the correlation id", async (t) => {
  const { logger, lines } = logCapture();
  const client = await serve(
    t,
    {
      generate: () => Promise.reject(failureOf({ method: "POST", path: "/completion", cause: refused() })),
    },
    logger,
  );
  const md = new Metadata();
  md.set("x-correlation-id", "corr-refused");
  const error = lastError(await drain(client.submit(submitRequest(), md)));
  t.is(error?.message, "POST /completion: connection refused");
  const end = lines.find((l) => l.event === "generation_end")!;
  t.like(end, { correlation_id: "corr-refused", error_message: "POST /completion: connection refused" });
  t.is(end.error_detail, `POST /completion: connect ECONNREFUSED ${ENGINE}`);
});

test("an adapter's unclassified failure reaches core without its stack", async (t) => {
  const { logger } = logCapture();
  const boom = new Error("boom\n    at Engine.generate (/srv/llorch/dist/workers/x.js:12:34)");
  const client = await serve(t, { generate: () => Promise.reject(boom) }, logger);
  t.is(lastError(await drain(client.submit(submitRequest())))?.message, "unexpected adapter failure: boom");
});

test("health and not-ready refusals carry the engine's last error without its address", async (t) => {
  const { logger } = logCapture();
  const down: WorkerHealth = { live: false, ready: false, lastError: `GET /health: connect ECONNREFUSED ${ENGINE}` };
  const client = await serve(t, { health: () => down }, logger);
  t.is((await health(client)).lastError, "GET /health: connection refused");
  const error = lastError(await drain(client.submit(submitRequest())));
  t.is(error?.message, "engine not ready: GET /health: connection refused");
});
