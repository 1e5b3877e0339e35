/** 1/φ: successive multiples of it, taken modulo 1, are as evenly spread as any sequence can be. */
const GOLDEN_FRACTION = (Math.sqrt(5) - 1) / 2;

/**
 * Gives every tracked call a home slot within the interval (its phase) and says when each
 * call's next keepAlive is due.
 *
 * Phases follow the golden-ratio sequence: however many calls are tracked, and in whatever
 * order they come and go, they stay spread over the interval with no two seconds much busier
 * than the mean. (A hash or a random offset per call gives Poisson clumps instead: with 10,000
 * calls over 15 minutes some seconds would get twice the mean.) Slots are anchored to the epoch,
 * not to the moment a send happened, so a call that fell off its slot (a retry, a slow answer)
 * goes back to it and the spread heals by itself after an outage.
 */
export class SendSlots {
  private counter = 0;

  constructor(private readonly intervalMs: number) {}

  /** A phase for the next call: milliseconds into the interval, in [0, interval). */
  nextPhase(): number {
    this.counter += 1;
    return this.phaseOf(this.counter);
  }

  /**
   * The phase of the n-th call (shared keeping numbers calls fleet-wide, so every replica agrees).
   * Whole milliseconds: a small integer is stored in the call itself, a fraction as a separate
   * 16-byte number (for each of 100,000 calls); timers have millisecond resolution anyway.
   */
  phaseOf(n: number): number {
    return Math.floor(((n * GOLDEN_FRACTION) % 1) * this.intervalMs);
  }

  /** The first moment strictly after `after` that falls on `phase`. */
  slotAfter(phase: number, after: number): number {
    const interval = this.intervalMs;
    const base = after - (((after % interval) + interval) % interval);
    let slot = base + phase;
    if (slot <= after) slot += interval;
    return slot;
  }

  /**
   * When a newly tracked call first sends. Normally its next slot; if its last keepAlive was
   * long enough ago that the slot would come later than one interval after it, the call sends
   * within what is left of that interval instead, at the same fraction of it as its phase, so a
   * batch of such calls is still spread.
   */
  firstSend(phase: number, now: number, lastKeepAliveAt: number): number {
    const slot = this.slotAfter(phase, now);
    const latest = lastKeepAliveAt + this.intervalMs;
    if (slot <= latest) return slot;
    return now + Math.max(0, latest - now) * (phase / this.intervalMs);
  }
}
