import test from "ava";
import { ErrorCode, Engine, StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import { validateAgainst } from "../../../contracts/openapi.js";
import { renderSse } from "../../../contracts/task-events.js";
import { parseSse } from "../../support/sse-parse.js";

test("a token batch becomes one frame per token with consecutive ids and indices", (t) => {
  const out = renderSse([{ seq: 5, kind: { $case: "tokens", tokens: { firstIndex: 3, texts: ["a", ' "b"\n', "日本🙂"] } } }]);
  const frames = parseSse(out);
  t.deepEqual(
    frames.map((f) => f.id),
    ["5", "6", "7"],
  );
  t.deepEqual(
    frames.map((f) => JSON.parse(f.data.join("\n"))),
    [
      { t: "a", i: 3 },
      { t: ' "b"\n', i: 4 },
      { t: "日本🙂", i: 5 },
    ],
  );
});

test("every event kind renders to data that matches its OpenAPI schema", (t) => {
  const out = renderSse([
    { seq: 1, kind: { $case: "started", started: { queuePosition: 2, predictedStartMs: 40 } } },
    { seq: 2, kind: { $case: "metrics", metrics: { queueDepth: 1, kvWarmth: false, poolId: "p", replicaId: "r", engineVersion: "" } } },
    {
      seq: 3,
      kind: {
        $case: "end",
        end: { tokensOut: 4, decodeTimeMs: 12, tokensIn: 3, stopReason: StopReason.STOP_REASON_CANCELED, traceArtifactId: "" },
      },
    },
    {
      seq: 4,
      kind: {
        $case: "error",
        error: {
          code: ErrorCode.ERROR_CODE_WORKER_RESET,
          message: "gone",
          engine: Engine.ENGINE_LLAMACPP,
          retriable: true,
          traceArtifactId: "",
        },
      },
    },
  ]);
  const frames = parseSse(out);
  const schema: Record<string, string> = { started: "SSEStarted", metrics: "SSEMetrics", end: "SSEEnd", error: "SSEError" };
  for (const f of frames) {
    const data = JSON.parse(f.data.join("\n"));
    t.is(validateAgainst(`/components/schemas/${schema[f.event]}`, data), null, f.event);
  }
  const endData = JSON.parse(frames[2]!.data.join(""));
  t.deepEqual(endData, { tokens_out: 4, decode_ms: 12, decode_time_ms: 12, tokens_in: 3, stop_reason: "canceled" });
  t.deepEqual(JSON.parse(frames[3]!.data.join("")), { code: "WORKER_RESET", message: "gone", engine: "llamacpp", retriable: true });
  t.false("engine_version" in JSON.parse(frames[1]!.data.join("")), "empty strings are omitted");
});
