import test from "ava";
import { afterAsking, claimStep } from "../../../core/registry/replica-claim.js";

test("a free id, or one whose holder has gone, is taken", (t) => {
  t.deepEqual(claimStep(undefined, "i1"), { kind: "take" });
  t.deepEqual(claimStep({ instanceId: "i0", closed: true }, "i1"), { kind: "take" });
});

test("the same sidecar instance takes its own id back; anyone else must wait for the holder to be asked", (t) => {
  t.is(claimStep({ instanceId: "i1", closed: false }, "i1").kind, "replace");
  t.deepEqual(claimStep({ instanceId: "i1", closed: false }, "i2"), { kind: "ask-holder" });
  t.deepEqual(claimStep({ instanceId: "", closed: false }, ""), { kind: "ask-holder" }, "no instance id proves nothing");
});

test("a holder that answers keeps its id; one that does not is replaced", (t) => {
  t.deepEqual(afterAsking(true), { kind: "refuse" });
  t.is(afterAsking(false).kind, "replace");
});
