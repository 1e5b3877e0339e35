/**
 * Caps requests at `perSecond()`, in virtual time, counted per window of `windowMs` (the
 * keeper's tick: it sends in batches, one per tick, so a window holds one batch). This is the
 * generic cell rate algorithm: one number, the theoretical arrival time of the next request,
 * instead of a queue or a timer.
 *
 * Normally idle: keepAlives already go out evenly, at half the limit. It bites after an outage
 * or a throttling pause, when every call that was retrying would otherwise go at once.
 */
export class SendRate {
  private tat = Number.NEGATIVE_INFINITY;

  /**
   * @param perSecond the limit in requests per (virtual) second; read on every send, so it can
   *   follow the number of tracked calls.
   * @param windowMs requests due within this span of each other may go in one batch.
   */
  constructor(
    private readonly perSecond: () => number,
    private readonly windowMs: number,
  ) {}

  /** The earliest moment at or after `now` at which a request may go. */
  nextAt(now: number): number {
    const spacing = 1000 / this.perSecond();
    return Math.max(now, this.tat - Math.max(0, this.windowMs - spacing));
  }

  /** Records a request sent at `now` (which must be at or after `nextAt(now)`). */
  take(now: number): void {
    this.tat = Math.max(this.tat, now) + 1000 / this.perSecond();
  }
}
