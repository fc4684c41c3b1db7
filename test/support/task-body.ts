import type { Json } from "./json.js";

/** A valid TaskRequest body for the mock engine; override any field. */
export function taskBody(overrides: Record<string, unknown> = {}): Record<string, Json> {
  return {
    task_id: crypto.randomUUID(),
    session_id: crypto.randomUUID(),
    workload: "completion",
    model_ref: "mock:tiny",
    engine: "llamacpp",
    ctx: 2048,
    priority: "interactive",
    seed: 7,
    prompt: "Tell me about llamas",
    max_tokens: 16,
    // Generous: tests about deadlines set their own; others must not trip DEADLINE_UNMET on a busy machine.
    deadline_ms: 600_000,
    ...overrides,
  };
}
