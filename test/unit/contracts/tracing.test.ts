import test from "ava";
import { startTracing, tracingWanted } from "../../../contracts/runtime/tracing.js";

test("tracing is on only when the standard OpenTelemetry variables ask for it", (t) => {
  t.false(tracingWanted({}));
  t.false(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: " " }));
  t.true(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" }));
  t.true(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces" }));
  t.true(tracingWanted({ OTEL_SERVICE_NAME: "llorch" }));
  t.false(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "true" }));
  t.false(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_TRACES_EXPORTER: "none" }));
});

test("without them no SDK starts", async (t) => {
  t.is(await startTracing("core", {}), undefined);
});
