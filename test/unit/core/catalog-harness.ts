// What the catalog tests share: a temporary catalog root, sha256 in hex, a
// well-formed digest and a clock the test moves.
import type { ExecutionContext } from "ava";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "llorch-catalog-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export const sha = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
export const DIGEST = `sha256:${"0".repeat(64)}`;

export function fakeClock(start = 1_000) {
  let now = start;
  const clock = () => now;
  return Object.assign(clock, { advance: (ms: number) => (now += ms) });
}
