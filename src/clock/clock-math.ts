import type { ClockState } from '../store/clock-port.js';

/** The virtual time a stored clock shows at wall time `wall` (never below its floor). */
export function virtualAt(state: ClockState, wall: number): number {
  return Math.max(state.floor, Math.floor(state.virtualOrigin + (wall - state.wallOrigin) * state.scale + state.offset));
}

/** A fresh clock state: virtual time `startAt` (default: the wall clock) at wall time `wall`. */
export function initialClockState(scale: number, wall: number, startAt = wall): ClockState {
  return { wallOrigin: wall, virtualOrigin: startAt, scale, offset: 0, floor: startAt, version: 1 };
}

/** The state after initClock's rules (see ClockPort.initClock): pure, so every store agrees. */
export function initClockStep(stored: ClockState | undefined, proposed: ClockState, wall: number): ClockState {
  if (!stored) return { ...proposed, floor: Math.max(proposed.floor, virtualAt(proposed, wall)) };
  const v = virtualAt(stored, wall);
  if (stored.scale !== proposed.scale) {
    return { wallOrigin: wall, virtualOrigin: v, scale: proposed.scale, offset: 0, floor: v, version: stored.version + 1 };
  }
  return { ...stored, floor: v, version: stored.version + 1 };
}

/** The state after advancing by `ms` at wall time `wall`. */
export function advanceStep(stored: ClockState, ms: number, wall: number): ClockState {
  return { ...stored, offset: stored.offset + ms, floor: virtualAt(stored, wall) + ms, version: stored.version + 1 };
}
