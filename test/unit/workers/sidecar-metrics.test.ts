import test from "ava";
import { createSidecarMetrics } from "../../../workers/sidecar/metrics.js";

function setup(kv: number | undefined) {
  let replicaId = "";
  const metrics = createSidecarMetrics({
    labels: () => ({ engine: "vllm", engine_version: "0.6.0", pool_id: "p", replica_id: replicaId }),
    slotsTotal: () => 4,
    slotsFree: () => 3,
    kvCacheUsageRatio: () => kv,
  });
  return { metrics, setReplica: (id: string) => (replicaId = id) };
}

test("gauges are read at scrape time with the labels current then", async (t) => {
  const { metrics, setReplica } = setup(0.25);
  setReplica("p-r7001");
  const text = await metrics.registry.metrics();
  const labels = 'engine="vllm",engine_version="0.6.0",pool_id="p",replica_id="p-r7001"';
  t.true(text.includes(`worker_slots_total{${labels}} 4`));
  t.true(text.includes(`worker_slots_free{${labels}} 3`));
  t.true(text.includes(`kv_cache_usage_ratio{${labels}} 0.25`));
});

test("kv_cache_usage_ratio has no sample when the engine reports none", async (t) => {
  const { metrics } = setup(undefined);
  t.false((await metrics.registry.metrics()).includes("kv_cache_usage_ratio{"));
});

test("a finished generation adds its tokens once and counts its outcome", async (t) => {
  const { metrics } = setup(undefined);
  metrics.generationFinished("completed", 5, 40);
  metrics.generationFinished("canceled", 2, 3);
  metrics.generationFinished("rejected", 0, 0);
  const text = await metrics.registry.metrics();
  t.regex(text, /tokens_out_total\{[^}]*\} 43/);
  t.regex(text, /tokens_in_total\{[^}]*\} 7/);
  t.regex(text, /worker_generations_total\{[^}]*outcome="rejected"\} 1/);
});
