import test from "ava";
import { unstartedReplica } from "./replica-harness.js";
import { SlotLease } from "../../../core/registry/slot-lease.js";

const replica = unstartedReplica;

test("a lease gives its slot back exactly once, however often it is released", (t) => {
  let givenBack = 0;
  const lease = new SlotLease(() => givenBack++);
  t.is(givenBack, 0);
  lease.release();
  lease.release();
  t.is(givenBack, 1);
});

test("claimSlot counts the slot as taken until its lease is released, and a second release frees nothing more", (t) => {
  const r = replica(2);
  t.teardown(() => r.close());
  const a = r.claimSlot()!;
  const b = r.claimSlot()!;
  t.is(r.activeSlots, 2);
  t.is(r.freeSlots, 0);
  a.release();
  a.release();
  t.is(r.activeSlots, 1);
  t.is(r.freeSlots, 1);
  b.release();
  t.is(r.activeSlots, 0);
});

test("claimSlot refuses when every slot is leased, and succeeds again once one comes back", (t) => {
  const r = replica(1);
  t.teardown(() => r.close());
  const held = r.claimSlot()!;
  t.is(r.claimSlot(), undefined);
  t.is(r.activeSlots, 1);
  held.release();
  t.truthy(r.claimSlot());
});

test("a replica's placement snapshot counts its leased slots", (t) => {
  const r = replica(3);
  t.teardown(() => r.close());
  r.claimSlot();
  t.like(r.snapshot(false), { activeSlots: 1, slotsTotal: 3 });
});
