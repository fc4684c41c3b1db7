// What the artifact store tests share: a store on a temporary root with a fake
// clock, and a check that an operation is refused with a given kind and field.
import type { ExecutionContext } from "ava";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ArtifactError, ArtifactStore } from "../../support/artifact-json.js";

export async function tempRoot(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "llorch-artifacts-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function fakeClock(start = 1_000) {
  const clock = { now: start };
  return { clock: () => clock.now, advance: (ms: number) => void (clock.now += ms) };
}

export async function openStore(t: ExecutionContext, options: Parameters<typeof ArtifactStore.open>[1] = {}) {
  const root = await tempRoot(t);
  const time = fakeClock();
  const store = await ArtifactStore.open(root, { clock: time.clock, ...options });
  return { root, store, ...time };
}

export async function refused(
  t: ExecutionContext,
  promise: Promise<unknown>,
  kind: ArtifactError["kind"],
  field?: string,
): Promise<ArtifactError> {
  const err = await t.throwsAsync(promise, { instanceOf: ArtifactError });
  t.is(err.kind, kind);
  if (field !== undefined) t.is(err.field, field);
  return err;
}
