import type { WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { ChangeListeners } from "../change-listeners.js";

/**
 * An adapter's health and the listeners told of each change: the one place an
 * in-process engine (the mock, the embedded llama.cpp) keeps it, so health()
 * and onHealthChange() are the same two lines everywhere.
 */
export class EngineHealth {
  private state: WorkerHealth = { live: false, ready: false, lastError: "not started" };
  private readonly listeners = new ChangeListeners<WorkerHealth>();

  get current(): WorkerHealth {
    return this.state;
  }

  set(health: WorkerHealth): void {
    this.state = health;
    this.listeners.emit(health);
  }

  onChange(listener: (health: WorkerHealth) => void): () => void {
    return this.listeners.add(listener);
  }
}
