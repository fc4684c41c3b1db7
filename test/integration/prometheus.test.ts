import test from "ava";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { api, stream, taskBody, type SseEvent } from "../support/http.js";
import { TestPrometheus } from "../support/prometheus.js";
import { prometheusTool } from "../support/promtool.js";
import { TestSystem } from "../support/system.js";

const SHIPPED_CONFIG = join(projectRoot(), "deploy", "prometheus", "prometheus.yml");
const DASHBOARD = join(projectRoot(), "deploy", "grafana", "llama-orch.json");

interface ScrapeConfig {
  job_name: string;
  static_configs: { targets: string[] }[];
}

test("the shipped scrape config passes promtool check config", (t) => {
  const res = spawnSync(prometheusTool("promtool"), ["check", "config", SHIPPED_CONFIG], { encoding: "utf8" });
  t.is(res.status, 0, res.stdout + res.stderr);
});

/** The shipped config with the test's targets, scraped every second. */
function scrapeConfigFor(targets: Record<string, string[]>): string {
  const config = parse(readFileSync(SHIPPED_CONFIG, "utf8")) as { global: Record<string, string>; scrape_configs: ScrapeConfig[] };
  config.global = { ...config.global, scrape_interval: "1s", evaluation_interval: "1s" };
  const jobs = config.scrape_configs.map((c) => c.job_name).sort();
  if (jobs.join() !== Object.keys(targets).sort().join()) throw new Error(`the shipped config's jobs are ${jobs.join(", ")}`);
  for (const job of config.scrape_configs) job.static_configs = [{ targets: targets[job.job_name]! }];
  return stringify(config);
}

/** Series a system of mock sidecars cannot have: no KV cache figures, no GPU, no full queue. */
const MAY_BE_EMPTY = ["kv_cache_usage_ratio", "gpu_utilization", "vram_used_bytes", "admission_backpressure_events_total"];

interface Dashboard {
  __inputs: { name: string }[];
  panels: { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string }[] }[];
}

test("a Prometheus fed by the shipped scrape config counts each streamed token once, and every dashboard query answers", async (t) => {
  const sys = await TestSystem.start({
    coreFlags: { "metrics-port": "0" },
    workers: [
      { replica: "p1", flags: { "metrics-port": "0" } },
      { replica: "p2", flags: { "metrics-port": "0" } },
    ],
  });
  t.teardown(() => sys.stop());
  const workerMetrics = await Promise.all(sys.workers.map(async (w) => (await w.proc.ready).metrics_address!));
  const prom = await TestPrometheus.start(
    scrapeConfigFor({
      "llama-orch-edge": [new URL(sys.edgeUrl).host],
      "llama-orch-core": [sys.coreMetricsAddress!],
      "llama-orch-workers": workerMetrics,
    }),
  );
  t.teardown(() => prom.stop());
  await prom.until(async () => (await prom.scalar("count(up == 1)")) === 4, "every target up");
  // Each replica's counters are scraped at 0 before its first token, so increase() counts that token too.
  await prom.until(async () => (await prom.scalar("count(tokens_out_total == 0)")) === 2, "core's token counters at 0");
  await prom.until(async () => (await prom.scalar("count(worker_tokens_out_total == 0)")) === 2, "the sidecars' token counters at 0");

  const tokensOf = (events: SseEvent[]) => events.filter((e) => e.event === "token").length;
  let streamed = 0;
  for (const max_tokens of [9, 14, 6, 11]) {
    const { json } = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens }) });
    const s = await stream(sys.edgeUrl, `/v1/tasks/${json.task_id}/stream`);
    await s.done;
    streamed += tokensOf(s.events);
  }
  t.is(streamed, 40);
  // Core and the sidecars count the same tokens, under names of their own.
  await prom.until(async () => (await prom.scalar("sum(tokens_out_total)")) === streamed, `sum(tokens_out_total) = ${streamed}`);
  await prom.until(async () => (await prom.scalar("sum(worker_tokens_out_total)")) === streamed, "sum(worker_tokens_out_total)");

  // A refusal and a cancel mid-stream, so the dashboard's panels for them have series. Core counts the
  // cancelled task's tokens that reached its stream (its sidecar may have made a few more before the cancel reached it).
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ engine: "tgi" }) })).status, 503);
  const slow = await api(t, sys.edgeUrl, "POST", "/v1/tasks", {
    body: taskBody({ max_tokens: 500, prompt: "[[mock tokens_per_second=50]] x" }),
  });
  const cut = await stream(sys.edgeUrl, `/v1/tasks/${slow.json.task_id}/stream`);
  await cut.waitFor(3, "token");
  t.is((await api(t, sys.edgeUrl, "POST", `/v1/tasks/${slow.json.task_id}/cancel`)).status, 204);
  await cut.done;
  streamed += tokensOf(cut.events);
  await prom.until(async () => (await prom.scalar("sum(tokens_out_total)")) === streamed, `sum(tokens_out_total) = ${streamed}`);
  // rate() needs two samples of a series; these two appeared only now.
  for (const name of ["tasks_canceled_total", "tasks_rejected_total"]) {
    await prom.until(async () => ((await prom.scalar(`min(count_over_time(${name}[1m]))`)) ?? 0) >= 2, `two samples of ${name}`);
  }

  // At the time of the latest scrape, over a window that reaches back to the counters' zeros, Prometheus
  // extrapolates nothing, so the figures are exact: no tolerance needed.
  const at = Number((await prom.scalar("max(timestamp(tokens_out_total))"))!.toFixed(3));
  const increase = await prom.scalar("sum(increase(tokens_out_total[5m]))", at);
  const perSecond = await prom.scalar("sum(rate(tokens_out_total[5m]))", at);
  t.true(Math.abs(increase! - streamed) < 1e-6, `sum(increase(tokens_out_total[5m])) = ${increase}, streamed ${streamed}`);
  t.true(Math.abs(perSecond! * 300 - streamed) < 1e-6, `sum(rate(tokens_out_total[5m])) * 300 = ${perSecond! * 300}, streamed ${streamed}`);
  // Core's own port adds only its process figures: its contract series come through the edge, once.
  t.is(await prom.scalar('count({job="llama-orch-core", __name__!~"process_.*|nodejs_.*|up|scrape_.*"})'), undefined);
  t.is(await prom.scalar('count(process_resident_memory_bytes{job=~"llama-orch-.*"})'), 4, "process figures from every process");

  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
  t.deepEqual(
    dashboard.__inputs.map((i) => i.name),
    ["DS_PROMETHEUS"],
  );
  const queries = dashboard.panels
    .filter((p) => p.type !== "row")
    .flatMap((p) => (p.targets ?? []).map((q) => ({ panel: p, expr: q.expr })));
  t.true(queries.length >= 20, `${queries.length} queries`);
  for (const { panel, expr } of queries) {
    t.is(panel.datasource?.uid, "${DS_PROMETHEUS}", panel.title);
    const promql = expr.replaceAll("$__rate_interval", "1m").replaceAll("$pool", ".*");
    const result = await prom.query(promql).catch((err: Error) => err);
    if (result instanceof Error) t.fail(`${panel.title}: ${result.message}`);
    else if (!MAY_BE_EMPTY.some((name) => expr.includes(name))) t.true(result.length > 0, `${panel.title}: ${expr} has series`);
  }
});
