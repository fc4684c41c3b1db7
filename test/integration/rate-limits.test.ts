import test from "ava";
import { launchLlorch, stopProcess } from "../../cli/process-launcher.js";
import { api, taskBody } from "../support/http.js";
import { LLORCH, TestSystem } from "../support/system.js";

// Without keys the edge cannot know who a caller is, so limits go by the client's address:
// a made-up bearer token, or a made-up X-Forwarded-For, must not buy a bucket of its own.
let sys: TestSystem;
let proxied: { url: string; stop(): Promise<void> };
test.before(async () => {
  sys = await TestSystem.start({ edgeFlags: { "rate-limit-per-second": "2" }, workers: [{ replica: "w1", slots: 4 }] });
  const proc = launchLlorch(
    "edge behind a proxy",
    ["edge", "--port", "0", "--core", sys.coreAddress, "--rate-limit-per-second", "2", "--trust-proxy"],
    {
      script: LLORCH,
      nodeArgs: [],
    },
  );
  proxied = { url: (await proc.ready).url!, stop: () => stopProcess(proc) };
});
test.after.always(async () => {
  await proxied?.stop();
  await sys?.stop();
});

type T = Parameters<typeof api>[0];
/** Requests admitted of `n` sent one after another; `took` is how long sending them took (what refilled meanwhile). */
async function admitted(t: T, url: string, headers: (i: number) => Record<string, string>, n = 40): Promise<number> {
  const started = Date.now();
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const r = await api(t, url, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }), headers: headers(i) });
    if (r.status === 202) ok++;
    else t.is(r.json.policy_label, "rate-limit");
  }
  took = Date.now() - started;
  return ok;
}
let took = 0;

// At 2/s with a burst of 2, forty requests sent one after another admit the burst plus what refilled while
// they were sent (on a loaded machine that can be seconds), never a bucket each.
const aboutTheBurst = (n: number) => n >= 2 && n <= 4 + Math.ceil((2 * took) / 1000) && n < 20;

test.serial("forty made-up bearer tokens share the address's bucket: about 2 of 40 admitted at 2/s", async (t) => {
  const n = await admitted(t, sys.edgeUrl, (i) => ({ Authorization: `Bearer made-up-${i}-${crypto.randomUUID()}` }));
  t.log(`${n} of 40 admitted`);
  t.true(aboutTheBurst(n), `${n} of 40 admitted`);
});

test.serial("without --trust-proxy, X-Forwarded-For names no one", async (t) => {
  await new Promise((r) => setTimeout(r, 1_100)); // the bucket refills
  const n = await admitted(t, sys.edgeUrl, (i) => ({ "X-Forwarded-For": `10.1.0.${i}` }));
  t.log(`${n} of 40 admitted`);
  t.true(aboutTheBurst(n), `${n} of 40 admitted`);
});

test.serial("with --trust-proxy the proxy's last hop is the client; what a client wrote before it is ignored", async (t) => {
  const spoofed = await admitted(t, proxied.url, (i) => ({ "X-Forwarded-For": `10.9.9.${i}, 10.0.0.7` }));
  t.true(aboutTheBurst(spoofed), `${spoofed} of 40 admitted for one client behind the proxy`);
  let distinct = 0;
  for (let i = 0; i < 3; i++) distinct += await admitted(t, proxied.url, () => ({ "X-Forwarded-For": `10.0.1.${i}` }), 2);
  t.is(distinct, 6, "three clients behind the proxy, each with its own burst of 2");
});
