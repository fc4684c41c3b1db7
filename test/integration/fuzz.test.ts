import test from "ava";
import fc from "fast-check";
import { sendAndJudge } from "../support/fuzz-judge.js";
import { anyContractRequest, deepJson } from "../support/request-fuzz.js";
import { TestSystem } from "../support/system.js";

// The property part of the chaos suite (`npm run chaos` sends 10,000): whatever
// a client sends to any operation of the contract, the answer is below 500 and
// one the contract allows, the error envelope included.

const KEY = "fuzz-key";
let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({ apiKey: KEY, workers: [{ replica: "r1", slots: 4 }] });
});
test.after.always(async () => sys?.stop());

test("any request to any operation gets a typed answer the contract allows, never a 5xx", async (t) => {
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(anyContractRequest(KEY), async (req) => {
      sent++;
      const verdict = await sendAndJudge(sys.edgeUrl, req);
      if (verdict.problems.length) t.log(verdict.problems.join("\n"));
      return verdict.problems.length === 0;
    }),
    { numRuns: 400, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) },
  );
  t.true(sent >= 400);
});

test("JSON nested past the depth limit is a 400 envelope on every operation that takes a body, however deep", async (t) => {
  for (const levels of [65, 2_000, 200_000]) {
    const verdict = await sendAndJudge(sys.edgeUrl, {
      method: "POST",
      path: "/v1/tasks",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${KEY}` },
      body: `{"prompt":${deepJson(levels)}}`,
      kind: `${levels} levels`,
    });
    t.deepEqual(verdict.problems, [], `${levels} levels`);
    t.is(verdict.status, 400, `${levels} levels`);
  }
});
