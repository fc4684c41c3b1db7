import test from "ava";
import { createEdgeMetrics } from "../../../edge/metrics.js";
import { CORE_METRICS_CACHE_MS, MetricsPage } from "../../../edge/metrics-page.js";

const CORE_TEXT = "# HELP tokens_out_total Tokens\n# TYPE tokens_out_total counter\ntokens_out_total 7\n";

function setup(answer: () => Promise<string>) {
  let clock = 1_000_000;
  const calls: number[] = [];
  const page = new MetricsPage(
    createEdgeMetrics(),
    (timeoutMs) => {
      calls.push(timeoutMs);
      return answer();
    },
    () => clock,
  );
  return { page, calls, advance: (ms: number) => (clock += ms) };
}

test("the page is the edge's series, its process figures, then core's, with core_metrics_up 1", async (t) => {
  const { page } = setup(() => Promise.resolve(CORE_TEXT));
  const text = await page.text();
  t.regex(text, /^core_metrics_up 1$/m);
  t.regex(text, /^process_resident_memory_bytes \d+/m);
  t.true(text.endsWith(CORE_TEXT));
  t.true(text.indexOf("http_requests_total") < text.indexOf("tokens_out_total"));
});

test("core that does not answer leaves its series out and says so in core_metrics_up 0", async (t) => {
  const { page } = setup(() => Promise.reject(new Error("deadline exceeded")));
  const text = await page.text();
  t.regex(text, /^core_metrics_up 0$/m);
  t.false(text.includes("tokens_out_total"));
});

test("scrapes within a second share one answer of core's, concurrent ones share one call, and a later one asks again", async (t) => {
  let n = 0;
  const { page, calls, advance } = setup(() => Promise.resolve(CORE_TEXT.replace("7", String(++n))));
  const [a, b] = await Promise.all([page.text(), page.text()]);
  t.is(calls.length, 1);
  t.regex(a, /^tokens_out_total 1$/m);
  t.regex(b, /^tokens_out_total 1$/m);
  advance(CORE_METRICS_CACHE_MS - 1);
  t.regex(await page.text(), /^tokens_out_total 1$/m);
  t.is(calls.length, 1);
  advance(1);
  t.regex(await page.text(), /^tokens_out_total 2$/m);
  t.is(calls.length, 2);
  t.true(
    calls.every((ms) => ms > 0 && ms <= 2_000),
    "each call to core has a short timeout",
  );
});
