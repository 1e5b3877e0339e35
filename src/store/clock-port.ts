/**
 * The virtual clock every instance shares: now = virtualOrigin + (wall - wallOrigin) * scale
 * + offset, never less than `floor`. Kept in the store, so instances agree and a restart goes
 * on from where time was (see src/clock/shared-clock.ts).
 */
export interface ClockState {
  /** Wall-clock epoch ms at which virtual time was virtualOrigin. */
  wallOrigin: number;
  virtualOrigin: number;
  /** Virtual ms per wall ms. */
  scale: number;
  /** Sum of every advance, virtual ms. */
  offset: number;
  /** The latest virtual time any instance published (on an advance or a start): time never goes below it. */
  floor: number;
  /** Grows by one with every change, so a watcher can tell a new state from one it has. */
  version: number;
}

/** What changed in the store, for instances to react at once (the change feed). */
/** `faults`: a fault rule was added or removed (the Redis control store announces it; see faults/cached-faults.ts). */
export type StoreChange = { kind: 'clock'; state: ClockState } | { kind: 'apps' } | { kind: 'faults' };

export interface ClockPort {
  /**
   * The stored clock, storing `proposed` first if there is none. If one is stored with another
   * scale, it is rebased at `wallNow` (virtual time goes on from where it is, at the new scale)
   * in the same atomic step. The floor moves up to the virtual time at `wallNow`.
   */
  initClock(proposed: ClockState, wallNow: number): Promise<ClockState>;

  /** Atomically adds `ms` to the offset (and raises the floor); returns the new state and tells every watcher. */
  advanceClock(ms: number, wallNow: number): Promise<ClockState>;

  /** The stored clock, if any. */
  readClock(): Promise<ClockState | undefined>;

  /**
   * Calls `listener` with every change made through any handle of this store (in this process
   * at once; across processes by the store's notification mechanism or by polling). Returns a
   * function that stops it.
   */
  watch(listener: (change: StoreChange) => void): () => void;
}
