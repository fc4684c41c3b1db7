import test from "ava";
import type { Context } from "koa";
import { Priority } from "../../../../contracts/gen/llama_orch/v1/common.js";
import { HttpError } from "../../../../edge/http-errors.js";
import { queueControls, uuidV5 } from "../../../../edge/compat/queue-controls.js";

/** Just what queueControls reads of a Koa context: headers and the caller's identity. */
function ctxWith(headers: Record<string, string>, identity = "token:abc123"): Context {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { get: (name: string) => lower[name.toLowerCase()] ?? "", state: { identity } } as unknown as Context;
}
const defaults = { defaultDeadlineMs: 600_000 };

test("uuidV5 matches RFC 9562's example (DNS namespace, www.example.com)", (t) => {
  t.is(uuidV5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.example.com"), "2ed6657d-e927-568b-95e1-2665a8aea6a2");
});

test("without headers: interactive, the default deadline, a fresh task and session each time", (t) => {
  const a = queueControls(ctxWith({}), defaults);
  const b = queueControls(ctxWith({}), defaults);
  t.like(a, { priority: Priority.PRIORITY_INTERACTIVE, deadlineMs: 600_000 });
  t.not(a.taskId, b.taskId);
  t.not(a.sessionId, b.sessionId);
});

test("X-Priority wins over service_tier; flex alone means batch", (t) => {
  t.is(queueControls(ctxWith({ "X-Priority": "Batch" }), defaults).priority, Priority.PRIORITY_BATCH);
  t.is(
    queueControls(ctxWith({ "X-Priority": "interactive" }), { ...defaults, serviceTier: "flex" }).priority,
    Priority.PRIORITY_INTERACTIVE,
  );
  t.is(queueControls(ctxWith({}), { ...defaults, serviceTier: "flex" }).priority, Priority.PRIORITY_BATCH);
  t.is(queueControls(ctxWith({}), { ...defaults, serviceTier: "priority" }).priority, Priority.PRIORITY_INTERACTIVE);
});

test("the session: X-Session-Id as given (lower-cased), else one per caller and user", (t) => {
  const given = "3A9E8D7C-1B2F-4C6D-8E0F-A1B2C3D4E5F6";
  t.is(queueControls(ctxWith({ "X-Session-Id": given }), { ...defaults, user: "u" }).sessionId, given.toLowerCase());
  const mine = queueControls(ctxWith({}, "token:aaaaaa"), { ...defaults, user: "alice" }).sessionId;
  t.is(queueControls(ctxWith({}, "token:aaaaaa"), { ...defaults, user: "alice" }).sessionId, mine);
  t.not(
    queueControls(ctxWith({}, "token:bbbbbb"), { ...defaults, user: "alice" }).sessionId,
    mine,
    "another key's alice is another session",
  );
  t.regex(mine, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test("malformed headers are refused naming the header", (t) => {
  const refusal = (headers: Record<string, string>) => {
    const err = t.throws(() => queueControls(ctxWith(headers), defaults), { instanceOf: HttpError });
    return err.detail.field;
  };
  t.is(refusal({ "X-Priority": "urgent" }), "X-Priority");
  t.is(refusal({ "X-Session-Id": "not-a-uuid" }), "X-Session-Id");
  t.is(refusal({ "X-Deadline-Ms": "0" }), "X-Deadline-Ms");
  t.is(refusal({ "X-Deadline-Ms": "1.5" }), "X-Deadline-Ms");
  t.is(refusal({ "X-Deadline-Ms": "86400001" }), "X-Deadline-Ms");
  t.is(queueControls(ctxWith({ "X-Deadline-Ms": "2500" }), defaults).deadlineMs, 2500);
});
