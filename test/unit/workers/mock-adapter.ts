import type { EngineAdapter } from "../../../workers/engine-adapter.js";
import type { MockEngine } from "../../../workers/mock/mock-engine.js";

/** The mock's basic adapter methods only (no model switching, no eviction), with `patch` over them. */
export function basicMockAdapter(engine: MockEngine, patch: Partial<EngineAdapter> = {}): EngineAdapter {
  return {
    info: () => engine.info(),
    health: () => engine.health(),
    onHealthChange: (listener) => engine.onHealthChange(listener),
    slotsTotal: () => engine.slotsTotal(),
    generate: (request, signal, sink) => engine.generate(request, signal, sink),
    start: () => engine.start(),
    stop: () => engine.stop(),
    ...patch,
  };
}
