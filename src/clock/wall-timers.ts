import type { Timer } from './clock.js';

interface Pending {
  at: number;
  fn: () => void;
  handle: NodeJS.Timeout | undefined;
  done: boolean;
}

/** setTimeout's longest delay; longer waits are split. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * Virtual-time timers on wall-clock setTimeout, for the clocks that run on their own
 * (ScaledClock, SharedClock): each waits the wall time its virtual time needs at the clock's
 * scale, and a jump in virtual time (advance, another instance's advance) fires what became
 * due in time order and re-arms the rest.
 */
export class WallTimers {
  private readonly pending = new Set<Pending>();

  constructor(
    private readonly now: () => number,
    private readonly scale: () => number,
  ) {}

  set(at: number, fn: () => void): Timer {
    const p: Pending = { at, fn, handle: undefined, done: false };
    this.pending.add(p);
    this.arm(p);
    return {
      cancel: () => {
        p.done = true;
        if (p.handle) clearTimeout(p.handle);
        this.pending.delete(p);
      },
    };
  }

  /** Virtual time jumped (or its scale changed): fire what is due, re-arm the rest. */
  jumped(): void {
    const now = this.now();
    const due = [...this.pending].filter((p) => p.at <= now).sort((a, b) => a.at - b.at);
    for (const p of due) this.fire(p);
    // The rest must be re-armed: their wall-clock delay changed.
    for (const p of this.pending) this.arm(p);
  }

  private arm(p: Pending): void {
    if (p.handle) clearTimeout(p.handle);
    const wait = Math.max(0, Math.ceil((p.at - this.now()) / this.scale()));
    p.handle = setTimeout(
      () => {
        // Rounding can wake us a hair early; go back to sleep rather than fire early.
        if (this.now() >= p.at) this.fire(p);
        else this.arm(p);
      },
      Math.min(wait, MAX_DELAY),
    );
  }

  private fire(p: Pending): void {
    if (p.done) return;
    p.done = true;
    if (p.handle) clearTimeout(p.handle);
    this.pending.delete(p);
    p.fn();
  }
}
