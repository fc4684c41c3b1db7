/**
 * One claimed slot of a replica. `release` gives it back; a second call does
 * nothing, so the place that ends a task's run can always release without
 * knowing whether something already did.
 */
export class SlotLease {
  private released = false;

  constructor(private readonly giveBack: () => void) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.giveBack();
  }
}
