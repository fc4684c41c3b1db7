import test from "ava";
import { parsePromText as parsePrometheusText, sampleValue } from "../../../../workers/http/prometheus-text.js";

test("Prometheus text: unlabelled and labelled samples, escapes, special values, comments and junk", (t) => {
  const text = [
    "# HELP llamacpp:kv_cache_usage_ratio KV-cache usage.",
    "# TYPE llamacpp:kv_cache_usage_ratio gauge",
    "llamacpp:kv_cache_usage_ratio 0.63",
    'vllm:num_requests_running{model_name="m \\"q\\" \\\\ x",engine="0"} 3 1700000000000',
    "up +Inf",
    "down NaN",
    "broken{a=1} 2",
    "also broken 1 2 3",
    "",
  ].join("\n");
  const samples = parsePrometheusText(text);
  t.is(samples.length, 4);
  t.is(sampleValue(samples, "llamacpp:kv_cache_usage_ratio"), 0.63);
  t.deepEqual(samples[1], { name: "vllm:num_requests_running", labels: { model_name: 'm "q" \\ x', engine: "0" }, value: 3 });
  t.is(sampleValue(samples, "vllm:num_requests_running", { engine: "0" }), 3);
  t.is(sampleValue(samples, "vllm:num_requests_running", { engine: "1" }), undefined);
  t.is(sampleValue(samples, "up"), Infinity);
  t.true(Number.isNaN(sampleValue(samples, "down")));
});
