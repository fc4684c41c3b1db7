import test from "ava";
import { api, stream, taskBody } from "../support/http.js";
import { lintProblemsBeyondContract, promtoolCheckMetrics } from "../support/promtool.js";
import { TestSystem } from "../support/system.js";

/** The sum of a metric's samples in an exposition (every label set). */
function sumOf(text: string, name: string): number {
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

const PROCESS_SERIES = ["process_cpu_seconds_total", "process_resident_memory_bytes", "nodejs_heap_size_used_bytes"];

test("every process's /metrics passes promtool, has its process figures, and each token is counted once by core and once by its sidecar", async (t) => {
  const sys = await TestSystem.start({
    coreFlags: { "metrics-port": "0" },
    workers: [
      { replica: "m1", flags: { "metrics-port": "0" } },
      { replica: "m2", flags: { "metrics-port": "0" } },
    ],
  });
  t.teardown(() => sys.stop());
  let streamed = 0;
  for (const max_tokens of [7, 11, 5]) {
    const { json } = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens }) });
    const s = await stream(sys.edgeUrl, `/v1/tasks/${json.task_id}/stream`);
    await s.done;
    streamed += s.events.filter((e) => e.event === "token").length;
  }
  t.is(streamed, 23);
  // Past the edge's one-second cache of core's answer, so the page shows the three tasks.
  await new Promise((r) => setTimeout(r, 1_100));
  const workerAddresses = await Promise.all(sys.workers.map(async (w) => (await w.proc.ready).metrics_address!));
  const pages = {
    edge: (await api(t, sys.edgeUrl, "GET", "/metrics")).text,
    core: await (await fetch(`http://${sys.coreMetricsAddress}/metrics`)).text(),
    ...Object.fromEntries(
      await Promise.all(workerAddresses.map(async (a, i) => [`worker ${i + 1}`, await (await fetch(`http://${a}/metrics`)).text()])),
    ),
  } as Record<string, string>;

  for (const [who, text] of Object.entries(pages)) {
    t.deepEqual(lintProblemsBeyondContract(await promtoolCheckMetrics(text)), [], `promtool check metrics on ${who}'s /metrics`);
    for (const name of PROCESS_SERIES) t.regex(text, new RegExp(`^${name} \\d`, "m"), `${who} exports ${name}`);
  }
  // The edge serves core's contract series, with the figures core has.
  t.regex(pages.edge!, /^core_metrics_up 1$/m);
  for (const name of ["tasks_enqueued_total", "tasks_started_total", "tokens_in_total", "tokens_out_total"]) {
    t.is(sumOf(pages.edge!, name), sumOf(pages.core!, name), `${name} on the edge is core's`);
  }
  t.regex(pages.edge!, /^latency_first_token_ms_count\{/m);
  t.regex(pages.edge!, /^queue_depth\{/m);
  // Core counts the tokens of every task; each sidecar counts its own under names of its own.
  const workers = Object.entries(pages).filter(([who]) => who.startsWith("worker"));
  t.is(sumOf(pages.edge!, "tokens_out_total"), streamed);
  t.is(
    workers.reduce((sum, [, text]) => sum + sumOf(text, "worker_tokens_out_total"), 0),
    streamed,
  );
  for (const [who, text] of workers) t.notRegex(text, /^tokens_(in|out)_total/m, `${who} does not export core's names`);
});

test("with core gone the edge's /metrics still answers, with its own series and core_metrics_up 0", async (t) => {
  const sys = await TestSystem.start({ workers: [] });
  t.teardown(() => sys.stop());
  t.regex((await api(t, sys.edgeUrl, "GET", "/metrics")).text, /^core_metrics_up 1$/m);
  await sys.killCore();
  await new Promise((r) => setTimeout(r, 1_100));
  const text = (await api(t, sys.edgeUrl, "GET", "/metrics")).text;
  t.regex(text, /^core_metrics_up 0$/m);
  t.regex(text, /^http_requests_total\{/m);
  t.false(text.includes("tasks_enqueued_total"), "no stale copy of core's series");
});
