import test from "ava";
import { api, taskBody, type ApiResponse } from "../support/http.js";
import type { Json } from "../support/json.js";
import { TestSystem } from "../support/system.js";

type T = Parameters<typeof api>[0];

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({
    workers: [
      { pool: "alpha", replica: "a1", slots: 2 },
      { pool: "alpha", replica: "a2", slots: 3 },
      { pool: "drained", replica: "d1", slots: 1 },
      // One slot, slow: its first task runs while the next ones wait in its queue.
      { pool: "slow", replica: "s1", slots: 1, tokensPerSecond: 20 },
    ],
  });
});
test.after.always(async () => sys?.stop());

/** Every page of a listing, following next_page_token. */
async function walk(t: T, path: string, limit: number, key: string): Promise<{ pages: Json[][]; last: ApiResponse }> {
  const pages: Json[][] = [];
  let token: string | undefined;
  let res: ApiResponse;
  do {
    const sep = path.includes("?") ? "&" : "?";
    res = await api(t, sys.edgeUrl, "GET", `${path}${sep}limit=${limit}${token ? `&page_token=${token}` : ""}`);
    t.is(res.status, 200, res.text);
    pages.push(res.json[key] as Json[]);
    token = res.json.next_page_token as string | undefined;
  } while (token !== undefined);
  return { pages, last: res };
}

test("GET /v1/pools lists every pool sorted by id with its summary", async (t) => {
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/pools/drained/drain", { body: { deadline_ms: 60_000 } })).status, 202);
  const res = await api(t, sys.edgeUrl, "GET", "/v1/pools");
  t.is(res.status, 200);
  const pools = res.json.pools as Json[];
  t.deepEqual(
    pools.map((p) => p.id),
    ["alpha", "drained", "slow"],
  );
  t.like(pools[0], {
    engine: "llamacpp",
    model_ref: "mock:tiny",
    live: true,
    ready: true,
    draining: false,
    slots_total: 5,
    replicas_total: 2,
    replicas_ready: 2,
  });
  t.like(pools[1], { draining: true, replicas_total: 1 });
  const health = await api(t, sys.edgeUrl, "GET", "/v1/pools/alpha/health");
  t.like(pools[0], { queue_depth: health.json.metrics.queue_depth, slots_total: health.json.metrics.slots_total });
});

test("GET /v1/catalog/models pages through the entries by id; the last page has no next_page_token", async (t) => {
  const ids = ["cat-e", "cat-a", "cat-d", "cat-b", "cat-c"];
  for (const id of ids) {
    const created = await api(t, sys.edgeUrl, "POST", "/v1/catalog/models", { body: { id, digest: "sha256:0123456789abcdef" } });
    t.is(created.status, 201, created.text);
  }
  const { pages, last } = await walk(t, "/v1/catalog/models", 2, "models");
  t.deepEqual(
    pages.map((p) => p.map((m) => m.id)),
    [["cat-a", "cat-b"], ["cat-c", "cat-d"], ["cat-e"]],
  );
  t.false("next_page_token" in last.json);
  const all = await api(t, sys.edgeUrl, "GET", "/v1/catalog/models");
  t.is(all.json.models.length, 5, "without limit one page of up to 50");
  t.like(all.json.models[0], { id: "cat-a", state: "Active" });
});

test("a bad limit or page_token is 400 INVALID_PARAMS naming it", async (t) => {
  for (const [query, field] of [
    ["limit=0", "limit"],
    ["limit=abc", "limit"],
    ["limit=1&limit=2", "limit"],
    ["page_token=not-a-token", "page_token"],
  ]) {
    const res = await api(t, sys.edgeUrl, "GET", `/v1/catalog/models?${query}`);
    t.is(res.status, 400, query);
    t.like(res.json, { code: "INVALID_PARAMS", field }, query);
  }
  const state = await api(t, sys.edgeUrl, "GET", "/v1/tasks?state=done");
  t.like(state.json, { code: "INVALID_PARAMS", field: "state" });
});

test("GET /v1/tasks lists queued and running tasks in admission order: the running one with its replica, the queued with their place", async (t) => {
  const pinned = () => taskBody({ max_tokens: 400, placement: { mode: "pin", pin_pool_id: "slow" } });
  const bodies = [pinned(), pinned(), pinned()];
  for (const body of bodies) t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
  t.teardown(async () => {
    for (const b of bodies) await fetch(`${sys.edgeUrl}/v1/tasks/${b.task_id as string}/cancel`, { method: "POST" });
  });
  const ids = bodies.map((b) => b.task_id);
  const ours = (tasks: Json[]) => tasks.filter((x) => ids.includes(x.task_id));
  let running: Json[] = [];
  for (let i = 0; i < 100 && !(running[0]?.tokens_out > 0); i++) {
    running = ours((await api(t, sys.edgeUrl, "GET", "/v1/tasks?state=running")).json.tasks);
    await new Promise((r) => setTimeout(r, 50));
  }
  t.is(running.length, 1);
  t.like(running[0], { task_id: ids[0], state: "running", pool_id: "slow", priority: "interactive", replica_id: "s1" });
  t.false("queue_position" in running[0]!);
  const queued = ours((await api(t, sys.edgeUrl, "GET", "/v1/tasks?state=queued")).json.tasks);
  t.deepEqual(
    queued.map((x) => [x.task_id, x.queue_position, x.tokens_out]),
    [
      [ids[1], 0, 0],
      [ids[2], 1, 0],
    ],
  );
  t.false("replica_id" in queued[0]!);
  const { pages } = await walk(t, "/v1/tasks", 1, "tasks");
  t.deepEqual(
    ours(pages.flat()).map((x) => x.task_id),
    ids,
    "paged one at a time, in admission order",
  );

  const firstQueued = await api(t, sys.edgeUrl, "GET", "/v1/tasks?state=queued&limit=1");
  const token = firstQueued.json.next_page_token as string;
  const misused = await api(t, sys.edgeUrl, "GET", `/v1/tasks?state=running&page_token=${token}`);
  t.like(misused.json, { code: "INVALID_PARAMS", field: "page_token" }, "a token is good only for its own filter");

  await api(t, sys.edgeUrl, "POST", `/v1/tasks/${ids[0] as string}/cancel`);
  const after = ours((await api(t, sys.edgeUrl, "GET", "/v1/tasks")).json.tasks);
  t.false(
    after.some((x) => x.task_id === ids[0]),
    "a finished task drops out",
  );
});

test("GET /v1/tasks?state=finished lists the retained finished tasks newest first, with how each ended", async (t) => {
  const done = async () => {
    const body = taskBody({ placement: { mode: "pin", pin_pool_id: "alpha" }, max_tokens: 3 });
    t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
    await (await fetch(`${sys.edgeUrl}/v1/tasks/${body["task_id"] as string}/stream`)).text();
    return body["task_id"] as string;
  };
  const first = await done();
  const second = await done();
  const { pages } = await walk(t, "/v1/tasks?state=finished", 1, "tasks");
  const listed = pages.flat().filter((x) => x.task_id === first || x.task_id === second);
  t.deepEqual(
    listed.map((x) => x.task_id),
    [second, first],
    "newest first, one page at a time",
  );
  for (const x of listed) {
    t.like(x, { state: "finished", pool_id: "alpha", outcome: "max_tokens", tokens_out: 3, model_ref: "mock:tiny" });
    t.true(x.first_token_ms >= 0 && x.finished_ms >= x.admitted_ms);
    t.regex(x.trace_artifact_id, /^[0-9a-f]{64}$/);
  }
});
