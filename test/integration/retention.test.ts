import test from "ava";
import { api, stream, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";

// Core keeps at most --max-retained-tasks tasks, the oldest finished going
// first, and forgets a finished one --task-retention-ms after it ended.

const RETENTION_MS = 1_500;
let sys: TestSystem;

test.before(async () => {
  sys = await TestSystem.start({
    coreFlags: { "max-retained-tasks": "3", "task-retention-ms": String(RETENTION_MS) },
    workers: [{ slots: 2 }],
  });
});
test.after.always(async () => sys?.stop());

test("past --max-retained-tasks the oldest finished tasks are gone, and the rest go when retention ends", async (t) => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const body = taskBody({ max_tokens: 2 });
    t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
    const s = await stream(sys.edgeUrl, `/v1/tasks/${String(body.task_id)}/stream`);
    await s.done;
    t.is(s.events.at(-1)?.event, "end");
    ids.push(String(body.task_id));
  }
  const kept = async () => {
    const statuses = [];
    for (const id of ids) statuses.push((await api(t, sys.edgeUrl, "GET", `/v1/tasks/${id}/stream`)).status);
    return statuses;
  };
  t.deepEqual(await kept(), [404, 404, 200, 200, 200]);
  const finished = await api(t, sys.edgeUrl, "GET", "/v1/tasks?state=finished");
  t.deepEqual(
    finished.json.tasks.map((x: { task_id: string }) => x.task_id),
    ids.slice(2).reverse(),
  );
  await new Promise((r) => setTimeout(r, RETENTION_MS + 100));
  t.deepEqual(await kept(), [404, 404, 404, 404, 404]);
});
