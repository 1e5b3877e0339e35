/**
 * Virtual time. Every part of callkeeper that needs "now" or "later" asks a Clock,
 * never the wall clock, so tests can run 45 minutes in a millisecond and a server can
 * run n times faster than real time.
 */
export interface Clock {
  /** The current virtual time, epoch milliseconds. */
  now(): number;
  /**
   * Runs `fn` once, as soon as virtual time has reached `at` (epoch ms). A timer whose
   * time has already come runs on a later tick, never synchronously inside `setTimer`.
   */
  setTimer(at: number, fn: () => void): Timer;
  /** Moves virtual time forward by `ms`; every timer that is now due runs, in time order. */
  advance(ms: number): void;
  /** Virtual milliseconds per wall millisecond; 0 for a clock that only moves when told. */
  readonly scale: number;
}

export interface Timer {
  cancel(): void;
}

interface Pending {
  at: number;
  fn: () => void;
  handle: NodeJS.Timeout | undefined;
  done: boolean;
}

/** setTimeout's longest delay; longer waits are split. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * The clock a server runs on: starts at the wall clock's time and runs `scale` times faster
 * than it (scale 1 = real time). `advance` jumps ahead on top of that.
 */
export class ScaledClock implements Clock {
  readonly scale: number;
  private readonly wallOrigin: number;
  private readonly virtualOrigin: number;
  private offset = 0;
  private readonly pending = new Set<Pending>();

  constructor(
    scale = 1,
    private readonly wall: () => number = Date.now,
    startAt?: number,
  ) {
    if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`time scale must be a positive number, got ${scale}`);
    this.scale = scale;
    this.wallOrigin = wall();
    this.virtualOrigin = startAt ?? this.wallOrigin;
  }

  now(): number {
    return Math.floor(this.virtualOrigin + (this.wall() - this.wallOrigin) * this.scale + this.offset);
  }

  setTimer(at: number, fn: () => void): Timer {
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

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`cannot move time backwards (${ms} ms)`);
    this.offset += ms;
    const now = this.now();
    const due = [...this.pending].filter((p) => p.at <= now).sort((a, b) => a.at - b.at);
    for (const p of due) this.fire(p);
    // The rest must be re-armed: their wall-clock delay just got shorter.
    for (const p of this.pending) this.arm(p);
  }

  private arm(p: Pending): void {
    if (p.handle) clearTimeout(p.handle);
    const wait = Math.max(0, Math.ceil((p.at - this.now()) / this.scale));
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

/** A clock that moves only when told to: for tests. */
export class ManualClock implements Clock {
  readonly scale = 0;
  private t: number;
  private readonly pending = new Set<Pending>();

  constructor(startAt = Date.UTC(2026, 0, 1)) {
    this.t = startAt;
  }

  now(): number {
    return this.t;
  }

  setTimer(at: number, fn: () => void): Timer {
    const p: Pending = { at, fn, handle: undefined, done: false };
    this.pending.add(p);
    if (at <= this.t) queueMicrotask(() => this.fire(p));
    return {
      cancel: () => {
        p.done = true;
        this.pending.delete(p);
      },
    };
  }

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`cannot move time backwards (${ms} ms)`);
    const target = this.t + ms;
    // Fire in time order, letting time stand at each timer's moment while it runs.
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.pending) if (p.at <= target && (!next || p.at < next.at)) next = p;
      if (!next) break;
      this.t = Math.max(this.t, next.at);
      this.fire(next);
    }
    this.t = target;
  }

  private fire(p: Pending): void {
    if (p.done) return;
    p.done = true;
    this.pending.delete(p);
    p.fn();
  }
}

/**
 * The real time, for what must follow the wall clock whatever the virtual time says: TLS
 * certificate validity (clients check it against their own clock). Domain code uses a Clock.
 */
export function wallTime(): number {
  return Date.now();
}
