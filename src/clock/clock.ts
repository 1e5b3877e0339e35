import { WallTimers } from './wall-timers.js';

/**
 * Virtual time. Every part of callkeeper that needs "now" or "later" asks a Clock,
 * never the wall clock, so tests can run 45 minutes in a millisecond and a server can
 * run n times faster than real time.
 */
export interface Clock {
  /** The current virtual time, epoch milliseconds; never past MAX_VIRTUAL_TIME. */
  now(): number;
  /**
   * Runs `fn` once, as soon as virtual time has reached `at` (epoch ms). A timer whose
   * time has already come runs on a later tick, never synchronously inside `setTimer`.
   */
  setTimer(at: number, fn: () => void): Timer;
  /**
   * Moves virtual time forward by `ms`; every timer that is now due runs, in time order.
   * Throws a RangeError for a negative step or one past MAX_VIRTUAL_TIME. A clock kept in a
   * shared store (SharedClock) resolves once the store took the step (and rejects instead).
   */
  advance(ms: number): void | Promise<void>;
  /** Virtual milliseconds per wall millisecond; 0 for a clock that only moves when told. */
  readonly scale: number;
  /**
   * Catches up with the time other instances set (SharedClock: re-reads the store), for an
   * answer that must show their latest advance rather than wait for its change notice.
   * Clocks of one process have nothing to catch up with.
   */
  sync?(): Promise<void>;
}

export interface Timer {
  cancel(): void;
}

interface Pending {
  at: number;
  fn: () => void;
  done: boolean;
}

/**
 * The latest virtual time callkeeper supports: 9999-01-01T00:00:00.000Z. Past it a time would
 * no longer be a four-digit-year ISO 8601 date (which .NET's DateTime and Graph's clients
 * expect), and deadlines and retention added to it must stay below JavaScript's last date
 * (year 275760). A running clock stops there; advancing past it is refused (docs/decisions.md).
 */
export const MAX_VIRTUAL_TIME = Date.UTC(9999, 0, 1);

/**
 * The fastest a ScaledClock may run: a million virtual ms per wall ms (a 45-minute keepAlive
 * timeout in under 3 wall ms; faster is nothing a test can observe, and float precision of
 * epoch ms is gone by 1e300).
 */
export const MAX_TIME_SCALE = 1_000_000;

/** Throws unless `t` is an epoch-ms time from 1970 to MAX_VIRTUAL_TIME. */
export function checkVirtualTime(t: number, what: string): void {
  if (!Number.isFinite(t) || t < 0 || t > MAX_VIRTUAL_TIME) {
    throw new RangeError(`${what} must be from 1970 to ${new Date(MAX_VIRTUAL_TIME).toISOString()}, got ${t}`);
  }
}

/** Throws unless moving `now` on by `ms` stays within MAX_VIRTUAL_TIME. */
export function checkAdvance(now: number, ms: number): void {
  if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`cannot move time backwards or by a non-finite step (${ms} ms)`);
  if (now + ms > MAX_VIRTUAL_TIME) {
    throw new RangeError(`cannot move virtual time past ${new Date(MAX_VIRTUAL_TIME).toISOString()}, the latest callkeeper supports`);
  }
}

/**
 * An epoch-ms time as ISO 8601 that cannot throw: error paths render times too, and an error
 * handler that throws (RangeError: Invalid time value) would take the process down.
 * Out-of-range times are clamped to JavaScript's dates; NaN renders as the epoch.
 */
export function safeIso(t: number): string {
  const ms = Number.isNaN(t) ? 0 : Math.min(8.64e15, Math.max(-8.64e15, t));
  return new Date(ms).toISOString();
}

/**
 * The clock a server runs on: starts at the wall clock's time and runs `scale` times faster
 * than it (scale 1 = real time). `advance` jumps ahead on top of that.
 */
export class ScaledClock implements Clock {
  readonly scale: number;
  private readonly wallOrigin: number;
  private readonly virtualOrigin: number;
  private offset = 0;
  private readonly timers = new WallTimers(
    () => this.now(),
    () => this.scale,
  );

  constructor(
    scale = 1,
    private readonly wall: () => number = Date.now,
    startAt?: number,
  ) {
    if (!(scale > 0) || !Number.isFinite(scale) || scale > MAX_TIME_SCALE) {
      throw new RangeError(`time scale must be a positive number up to ${MAX_TIME_SCALE}, got ${scale}`);
    }
    this.scale = scale;
    this.wallOrigin = wall();
    this.virtualOrigin = startAt ?? this.wallOrigin;
    checkVirtualTime(this.virtualOrigin, 'the start of virtual time');
  }

  now(): number {
    // A fast clock left running for years stops at the last supported time rather than break.
    return Math.min(MAX_VIRTUAL_TIME, Math.floor(this.virtualOrigin + (this.wall() - this.wallOrigin) * this.scale + this.offset));
  }

  setTimer(at: number, fn: () => void): Timer {
    return this.timers.set(at, fn);
  }

  advance(ms: number): void {
    checkAdvance(this.now(), ms);
    this.offset += ms;
    this.timers.jumped();
  }
}

/** A clock that moves only when told to: for tests. */
export class ManualClock implements Clock {
  readonly scale = 0;
  private t: number;
  private readonly pending = new Set<Pending>();

  constructor(startAt = Date.UTC(2026, 0, 1)) {
    checkVirtualTime(startAt, 'the start of virtual time');
    this.t = startAt;
  }

  now(): number {
    return this.t;
  }

  setTimer(at: number, fn: () => void): Timer {
    const p: Pending = { at, fn, done: false };
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
    checkAdvance(this.t, ms);
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
