import test from "ava";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "puppeteer-core";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { launchChromium, noBrowserReason } from "../support/browser.js";
import { api, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";

// The operator console in headless Chromium against real processes, with an
// API key: it lists the replicas, streams a completion in the playground,
// cancels one, and shows a killed sidecar as gone. Screenshots are kept in
// test/artifacts/ for a person to look at.

const KEY = "llorch-console-key-51c2";
const auth = { Authorization: `Bearer ${KEY}` };
const SHOTS = join(projectRoot(), "test", "artifacts");

async function text(page: Page, selector: string): Promise<string> {
  return page.$eval(selector, (el) => el.textContent ?? "");
}

/** Polls the page until `selector`'s text matches. */
async function waitForText(page: Page, selector: string, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const now = await text(page, selector).catch(() => "");
    if (pattern.test(now)) return now;
    if (Date.now() > until) throw new Error(`${selector} never matched ${String(pattern)}; it says: ${now.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const skipped = noBrowserReason();
if (skipped) {
  test.skip(`SKIPPED, no browser: the operator console in headless Chromium; ${skipped}`, () => {});
} else {
  test.serial("the console shows replicas, streams and cancels in the playground, and shows a killed sidecar as gone", async (t) => {
    const sys = await TestSystem.start({
      apiKey: KEY,
      workers: [
        { pool: "alpha", replica: "alpha-1", slots: 2, tokensPerSecond: 40 },
        { pool: "beta", replica: "beta-1", slots: 1, tokensPerSecond: 40 },
      ],
    });
    const chromium = await launchChromium();
    t.teardown(async () => {
      await chromium.close();
      await sys.stop();
    });
    mkdirSync(SHOTS, { recursive: true });
    const page = await chromium.browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    const console = await page.goto(`${sys.edgeUrl}/ui`);
    t.is(console?.status(), 200);

    // Without the key the data calls are refused, and the page says so.
    await waitForText(page, "#status", /needs a valid key/);
    await page.type("#api-key", KEY);
    await page.click("#login button[type=submit]");
    await waitForText(page, "#replicas tbody", /alpha-1[\s\S]*beta-1/);
    t.regex(await text(page, "#pools tbody"), /alpha[\s\S]*llamacpp[\s\S]*mock:tiny/);

    // Both pools under load: every slot busy and one task queued on each; the console shows it.
    const load = [
      ...["alpha", "alpha", "alpha"].map((pool) => taskBody({ max_tokens: 2000, placement: { mode: "pin", pin_pool_id: pool } })),
      ...["beta", "beta"].map((pool) => taskBody({ max_tokens: 2000, placement: { mode: "pin", pin_pool_id: pool } })),
    ];
    for (const body of load) t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers: auth })).status, 202);
    await waitForText(page, "#pools tbody", /alpha[^\n]*2 \/ 2[^\n]*1 \/ 0[\s\S]*beta[^\n]*1 \/ 1[^\n]*1 \/ 0/);
    await waitForText(page, "#tasks tbody", /running[\s\S]*queued/);
    await page.screenshot({ path: join(SHOTS, "console-under-load.png"), fullPage: true });
    for (const body of load) await api(t, sys.edgeUrl, "POST", `/v1/tasks/${String(body.task_id)}/cancel`, { headers: auth });

    // The playground streams a completion: tokens arrive, then its end.
    await waitForText(page, "#pg-model", /mock:tiny/);
    await page.$eval("#pg-max-tokens", (el) => ((el as unknown as { value: string }).value = "12"));
    await page.click("#pg-run");
    await waitForText(page, "#pg-state", /ended: max_tokens, 12 tokens/);
    t.true((await text(page, "#pg-output")).trim().split(/\s+/).length >= 6, "the output shows the streamed words");
    await waitForText(page, "#tasks tbody", /max_tokens/);
    await page.screenshot({ path: join(SHOTS, "console-playground.png"), fullPage: true });

    // A long one, cancelled: the tokens stop and the playground says why.
    await page.$eval("#pg-max-tokens", (el) => ((el as unknown as { value: string }).value = "2000"));
    await page.click("#pg-run");
    await waitForText(page, "#pg-output", /\S+ \S+ \S+/);
    await page.click("#pg-cancel");
    const ended = await waitForText(page, "#pg-state", /ended: canceled/);
    const tokens = Number(/(\d+) tokens/.exec(ended)![1]);
    t.true(tokens < 2000, `cancelled after ${tokens} tokens`);

    // A sidecar killed: the console keeps its row and says it is gone.
    await sys.killWorker("beta-1");
    await waitForText(page, "#replicas tbody", /beta-1[^\n]*gone|gone[\s\S]*left the pool/);
    await page.screenshot({ path: join(SHOTS, "console-replica-gone.png"), fullPage: true });
    const health = await api(t, sys.edgeUrl, "GET", "/healthz");
    t.is(health.status, 200);
  });
}
