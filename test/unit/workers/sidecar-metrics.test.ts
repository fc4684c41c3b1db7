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
  t.true(text.includes(`worker_slots{${labels}} 4`));
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
  t.regex(text, /^worker_tokens_out_total\{[^}]*\} 43$/m);
  t.regex(text, /^worker_tokens_in_total\{[^}]*\} 7$/m);
  t.regex(text, /worker_generations_total\{[^}]*outcome="rejected"\} 1/);
});

test("the sidecar's token series are its own: core alone exports tokens_in_total and tokens_out_total", async (t) => {
  const { metrics } = setup(undefined);
  metrics.generationFinished("completed", 5, 40);
  const text = await metrics.registry.metrics();
  t.notRegex(text, /^tokens_(in|out)_total/m, "a sum over both would count every token twice");
});

test("the token counters start at 0 once the replica is named, so rate() sees its first tokens", async (t) => {
  const { metrics, setReplica } = setup(undefined);
  t.notRegex(await metrics.registry.metrics(), /^worker_tokens_out_total\{/m, "no zero under a replica id about to change");
  setReplica("p-r1");
  const labels = 'engine="vllm",engine_version="0.6.0",pool_id="p",replica_id="p-r1"';
  const text = await metrics.registry.metrics();
  t.true(text.includes(`worker_tokens_out_total{${labels}} 0`), text);
  t.true(text.includes(`worker_tokens_in_total{${labels}} 0`));
});
