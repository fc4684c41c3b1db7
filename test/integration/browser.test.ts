import test, { type ExecutionContext } from "ava";
import { launchChromium, noBrowserReason, servePage } from "../support/browser.js";
import { taskBody } from "../support/http.js";
import type { Json } from "../support/json.js";
import { TestSystem } from "../support/system.js";

const KEY = "llorch-browser-secret-3b7a";

/**
 * The page: admits a task with fetch (JSON and Authorization: a preflighted
 * request), then follows it with EventSource, rendering each token as a list
 * item and recording every event, open and error in window.state.
 */
function page(edgeUrl: string, task: Json): string {
  const config = JSON.stringify({ edgeUrl, key: KEY, task });
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>llama-orch from another origin</title></head>
<body><ol id="tokens"></ol>
<script>
const config = ${config};
const state = (window.state = { events: [], opens: 0, errorStates: [], closed: false });
async function run() {
  const res = await fetch(config.edgeUrl + "/v1/tasks", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + config.key, "X-Correlation-Id": "from-the-page" },
    body: JSON.stringify(config.task),
  });
  state.admitted = { status: res.status, correlationId: res.headers.get("X-Correlation-Id"), body: await res.json() };
  const source = new EventSource(config.edgeUrl + "/v1/tasks/" + config.task.task_id + "/stream");
  source.onopen = () => state.opens++;
  source.onerror = () => {
    state.errorStates.push(source.readyState);
    if (source.readyState === EventSource.CLOSED) state.closed = true;
  };
  for (const name of ["started", "token", "metrics", "end", "error"]) {
    source.addEventListener(name, (e) => {
      const data = JSON.parse(e.data);
      state.events.push({ event: name, id: e.lastEventId, data });
      if (name === "token") document.getElementById("tokens").appendChild(document.createElement("li")).textContent = data.t;
    });
  }
}
run().catch((err) => (state.failure = String(err)));
</script></body></html>`;
}

/** One series of the edge's http_requests_total, picked by its labels. */
async function requestsCounted(edgeUrl: string, labels: string): Promise<number> {
  const text = await (await fetch(`${edgeUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("http_requests_total{") && l.includes(labels));
  return line ? Number(line.split(" ").pop()) : 0;
}

interface PageState {
  events: { event: string; id: string; data: Json }[];
  opens: number;
  errorStates: number[];
  closed: boolean;
  admitted?: { status: number; correlationId: string | null; body: Json };
  failure?: string;
}

type T = ExecutionContext;

/** The page's origin is allowed when the edge starts, and the page knows the edge's URL: it is rendered per request. */
async function pageAndSystem(t: T, task: Json): Promise<{ site: string; edgeUrl: string }> {
  let edgeUrl = "";
  const site = await servePage(() => page(edgeUrl, task));
  t.teardown(() => site.close());
  // EventSource cannot send Authorization: it streams as the loopback caller --auth-optional lets in; the fetch presents the key.
  const sys = await TestSystem.start({
    apiKey: KEY,
    edgeFlags: { "cors-origin": site.origin, "auth-optional": "" },
    workers: [{ replica: "r1", tokensPerSecond: 200 }],
  });
  t.teardown(() => sys.stop());
  edgeUrl = sys.edgeUrl;
  return { site: site.origin, edgeUrl };
}

/** started, then tokens (metrics between them) with indices 0..n-1, then end; ids increasing. */
function assertInOrder(t: T, events: PageState["events"], tokenCount: number): void {
  const names = events.map((e) => e.event);
  t.is(names[0], "started");
  t.is(names.at(-1), "end");
  t.true(names.slice(1, -1).every((n) => n === "token" || n === "metrics"));
  const tokens = events.filter((e) => e.event === "token");
  t.deepEqual(
    tokens.map((e) => e.data.i),
    tokens.map((_, i) => i),
  );
  t.is(tokens.length, tokenCount);
  const ids = events.map((e) => Number(e.id));
  t.true(
    ids.every((id, i) => i === 0 || id > ids[i - 1]!),
    "ids increase",
  );
}

const skipped = noBrowserReason();
if (skipped) {
  test.skip(`SKIPPED, no browser: a page in headless Chromium on another origin streams with EventSource; ${skipped}`, () => {});
} else {
  test("a page in headless Chromium on another origin admits a task, streams it with EventSource, renders its tokens and stops at the 204", async (t) => {
    const task = taskBody({ max_tokens: 12 });
    const { site, edgeUrl } = await pageAndSystem(t, task);
    const chromium = await launchChromium();
    t.teardown(() => chromium.close());
    const tab = await chromium.browser.newPage();
    await tab.goto(`${site}/`);
    // Chromium reconnects 3 s after the stream closes; the 204 it then gets closes the EventSource for good.
    await tab.waitForFunction("window.state.closed || window.state.failure", { timeout: 30_000 });
    const state = (await tab.evaluate("window.state")) as PageState;
    t.is(state.failure, undefined);

    t.is(state.admitted?.status, 202, "the preflighted POST (JSON, Authorization) went through");
    t.is(state.admitted?.correlationId, "from-the-page", "the page can read the exposed X-Correlation-Id");
    t.true((await requestsCounted(edgeUrl, 'method="OPTIONS",route="unmatched",status="204"')) >= 1, "a preflight was answered");

    assertInOrder(t, state.events, 12);
    const rendered = await tab.$$eval("#tokens li", (items) => items.map((li) => li.textContent));
    t.deepEqual(
      rendered,
      state.events.filter((e) => e.event === "token").map((e) => e.data.t),
      "the page rendered every token in order",
    );

    t.is(state.opens, 1, "opened once: the reconnect after the end got no stream");
    t.deepEqual(state.errorStates, [0, 2], "the stream's close (reconnecting), then the 204 (closed for good)");
    await new Promise((r) => setTimeout(r, 3_500));
    const route = 'route="/v1/tasks/:id/stream"';
    t.is(await requestsCounted(edgeUrl, `method="GET",${route},status="200"`), 1, "one stream");
    t.is(await requestsCounted(edgeUrl, `method="GET",${route},status="204"`), 1, "one reconnect, answered 204, and none after it");
  });
}
