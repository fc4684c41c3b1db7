// What the adapter conformance cases set up: a fake engine and an adapter on
// it, both ended with the test.
import type { ExecutionContext } from "ava";
import type { WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { EngineAdapter } from "../../../workers/engine-adapter.js";
import type { AdapterSettings, AnySpec, ConformanceFake } from "./adapter-conformance.js";
import { within } from "./helpers.js";

export const STOPPED: WorkerHealth = { live: false, ready: false, lastError: "stopped" };

export async function fakeOf(t: ExecutionContext, spec: AnySpec, opts?: unknown): Promise<ConformanceFake<unknown>> {
  const fake = await spec.startFake(opts);
  t.teardown(() => fake.close());
  return fake;
}

export function adapterOf(t: ExecutionContext, spec: AnySpec, url: string, settings?: AdapterSettings): EngineAdapter {
  const adapter: EngineAdapter = spec.createAdapter(url, settings);
  t.teardown(() => adapter.stop());
  return adapter;
}

/** A fake and an adapter on it, both ended with the test; the adapter Ready unless `start` is false. */
export async function setUp(t: ExecutionContext, spec: AnySpec, opts?: unknown, settings?: AdapterSettings, start = true) {
  const fake = await fakeOf(t, spec, opts);
  const adapter = adapterOf(t, spec, fake.url, settings);
  if (start) await within(adapter.start(), 3_000, "adapter ready");
  return { fake, adapter };
}

export function matches(t: ExecutionContext, actual: string, expected: string | RegExp, what?: string): void {
  if (typeof expected === "string") t.is(actual, expected, what);
  else t.regex(actual, expected, what);
}
