/**
 * A set of change callbacks with an unsubscribe handle. Slot pools and engine
 * health both need "tell me when this moves"; an EventEmitter would also do,
 * but an unsubscribe function is harder to leak than a removeListener call.
 */
export class ChangeListeners<T> {
  private readonly listeners = new Set<(value: T) => void>();

  add(listener: (value: T) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  emit(value: T): void {
    for (const listener of this.listeners) listener(value);
  }

  clear(): void {
    this.listeners.clear();
  }
}
