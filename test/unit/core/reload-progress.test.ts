import test from "ava";
import type { LoadProgress } from "../../../contracts/gen/llama_orch/v1/common.js";
import { slowestProgress } from "../../../core/scheduler/reload-progress.js";

const GB = 1_000_000_000;

function progress(phase: string, bytesDone: number, bytesTotal?: number, subject = ""): LoadProgress {
  return { phase, bytesDone, bytesTotal, bytesPerSecond: undefined, subject };
}

test("the slowest replica is the one with the least fraction of its bytes done", (t) => {
  const a = progress("downloading", 3 * GB, 4 * GB, "a.gguf");
  const b = progress("downloading", 1 * GB, 4 * GB, "b.gguf");
  const c = progress("downloading", 900_000_000, 1 * GB, "c.gguf");
  t.is(slowestProgress([a, b, c]), b, "a quarter done is slower than three quarters or 90%, whatever the byte counts");
});

test("a replica in an earlier phase is slower than one further on, whatever its fraction", (t) => {
  const verifying = progress("verifying", 1, 4 * GB);
  const downloading = progress("downloading", 4 * GB - 1, 4 * GB);
  const loading = progress("loading", 0);
  const resolving = progress("resolving", 0);
  t.is(slowestProgress([verifying, loading, downloading]), downloading);
  t.is(slowestProgress([verifying, loading, downloading, resolving]), resolving);
});

test("an unknown total counts as nothing done yet; an unknown phase as the first", (t) => {
  const known = progress("downloading", 1, 100);
  const unknownTotal = progress("downloading", 99);
  t.is(slowestProgress([known, unknownTotal]), unknownTotal);
  const future = progress("unpacking", 50, 100);
  t.is(slowestProgress([progress("downloading", 10, 100), future]), future, "an unknown phase is never hidden behind a known one");
  const zeroTotal = progress("downloading", 5, 0);
  t.is(slowestProgress([known, zeroTotal]), zeroTotal, "a total of 0 says nothing either");
});

test("replicas without progress do not count; none at all gives undefined; ties go to the first given", (t) => {
  const only = progress("loading", 0);
  t.is(slowestProgress([undefined, only, undefined]), only);
  t.is(slowestProgress([undefined, undefined]), undefined);
  t.is(slowestProgress([]), undefined);
  const first = progress("downloading", 10, 100, "first");
  const second = progress("downloading", 10, 100, "second");
  t.is(slowestProgress([first, second]), first);
  t.is(slowestProgress([second, first]), second);
});
