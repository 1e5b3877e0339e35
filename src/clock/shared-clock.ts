import type { ClockPort, ClockState } from '../store/clock-port.js';
import { type Clock, checkAdvance, MAX_TIME_SCALE, MAX_VIRTUAL_TIME, type Timer } from './clock.js';
import { initialClockState, virtualAt } from './clock-math.js';
import { WallTimers } from './wall-timers.js';

export interface SharedClockOptions {
  /** Virtual ms per wall ms wanted; a store holding another scale is rebased to it. */
  scale: number;
  wall?: () => number;
  /** Virtual time of a store that has no clock yet (default: the wall clock). */
  startAt?: number;
  /** How often (wall ms) to re-read the stored clock in case a change notice was missed. */
  pollWallMs?: number;
}

/**
 * The virtual clock of a server, kept in the store (ClockPort) so that every instance sharing
 * it shows the same time and a restart goes on from where time was, never back. now() is
 * computed locally from the stored state (no I/O); advance() is one atomic store step, and
 * the store's change feed (or a poll, as a backstop) brings every other instance's advance
 * here: timers that became due fire, the rest are re-armed.
 */
export class SharedClock implements Clock {
  private state: ClockState;
  private last = Number.NEGATIVE_INFINITY;
  private readonly timers = new WallTimers(
    () => this.now(),
    () => this.state.scale,
  );
  private readonly unwatch: () => void;
  private readonly poll: NodeJS.Timeout;

  private constructor(
    private readonly store: ClockPort,
    state: ClockState,
    private readonly wall: () => number,
    pollWallMs: number,
  ) {
    this.state = state;
    this.unwatch = store.watch((change) => {
      if (change.kind === 'clock') this.apply(change.state);
    });
    this.poll = setInterval(() => {
      store.readClock().then(
        (s) => s && this.apply(s),
        () => undefined, // The store is down: the next poll tries again.
      );
    }, pollWallMs);
    this.poll.unref();
  }

  static async open(store: ClockPort, options: SharedClockOptions): Promise<SharedClock> {
    const { scale } = options;
    if (!(scale > 0) || !Number.isFinite(scale) || scale > MAX_TIME_SCALE)
      throw new RangeError(`time scale must be a positive number up to ${MAX_TIME_SCALE}, got ${scale}`);
    const wall = options.wall ?? Date.now;
    const w = wall();
    const state = await store.initClock(initialClockState(scale, w, options.startAt), w);
    return new SharedClock(store, state, wall, options.pollWallMs ?? 1_000);
  }

  get scale(): number {
    return this.state.scale;
  }

  /** The stored state this clock runs on. */
  get stored(): ClockState {
    return this.state;
  }

  now(): number {
    // Never backwards within a process either (a wall clock stepped back by NTP).
    // A running clock stops at MAX_VIRTUAL_TIME (see clock.ts).
    this.last = Math.min(MAX_VIRTUAL_TIME, Math.max(this.last, virtualAt(this.state, this.wall())));
    return this.last;
  }

  setTimer(at: number, fn: () => void): Timer {
    return this.timers.set(at, fn);
  }

  /** Moves every instance's time forward by `ms` (one atomic store step). */
  async advance(ms: number): Promise<void> {
    checkAdvance(this.now(), ms);
    this.apply(await this.store.advanceClock(ms, this.wall()));
  }

  /** Reads the stored state now rather than wait for its change notice (which crosses a cluster bus). */
  async sync(): Promise<void> {
    const state = await this.store.readClock();
    if (state) this.apply(state);
  }

  /** Takes a newer stored state (from this instance or another): fires what became due. */
  apply(state: ClockState): void {
    if (state.version <= this.state.version) return;
    this.state = state;
    this.timers.jumped();
  }

  /** Stops listening to the store; timers are left to their owners. */
  close(): void {
    this.unwatch();
    clearInterval(this.poll);
  }
}
