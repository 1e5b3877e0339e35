/** Tuning of the end-storm circuit breaker. Durations are virtual ms. */
export interface EndBreakerOptions {
  /** Opens when more than this share of the tracked calls end within `windowMs`. Default 0.2. */
  share?: number;
  /** ...and at least this many did (a keeper of 3 calls may see 2 end in a minute). Default 10. */
  minEnds?: number;
  /** The window ends are counted in. Default 60 s. */
  windowMs?: number;
  /** How long 404s are not taken as ends once open. Default 10 minutes. */
  holdMs?: number;
}

export type ResolvedEndBreaker = Required<EndBreakerOptions>;

export const END_BREAKER_DEFAULTS: ResolvedEndBreaker = { share: 0.2, minEnds: 10, windowMs: 60_000, holdMs: 10 * 60_000 };

/** What the breaker says about one "call not found" answer. */
export type BreakerVerdict = { end: true } | { end: false; opened: boolean };

/**
 * Guards against ending many calls at once on answers that say so: a keeper pointed at the
 * wrong Graph (another callkeeper, another cloud) hears 8522 for every call, and ending them
 * all would make the bot release all its media. Calls do end in numbers (a big meeting is
 * over), but not a fifth of a bot's calls within a minute; past that share the breaker opens,
 * the ends are treated as failures (retried on the slow schedule) until `holdMs` has passed.
 */
export class EndBreaker {
  private readonly ends: number[] = [];
  private openUntil = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: ResolvedEndBreaker | false) {}

  /** Whether 404s are currently not taken as ends. */
  isOpen(now: number): boolean {
    return now < this.openUntil;
  }

  get until(): number | undefined {
    return Number.isFinite(this.openUntil) ? this.openUntil : undefined;
  }

  /** Ends within the window, as last counted. */
  get recentEnds(): number {
    return this.ends.length;
  }

  /**
   * Closes the breaker if its hold is over; returns true when it did (the keeper says so).
   */
  closeIfDue(now: number): boolean {
    if (!Number.isFinite(this.openUntil) || now < this.openUntil) return false;
    this.openUntil = Number.NEGATIVE_INFINITY;
    this.ends.length = 0;
    return true;
  }

  /** A call answered "not found"; `tracked` counts the calls being kept, this one included. */
  onNotFound(now: number, tracked: number): BreakerVerdict {
    if (this.o === false) return { end: true };
    if (this.isOpen(now)) return { end: false, opened: false };
    const from = now - this.o.windowMs;
    let drop = 0;
    while (drop < this.ends.length && (this.ends[drop] as number) <= from) drop += 1;
    if (drop > 0) this.ends.splice(0, drop);
    // The population is what was tracked at the start of the window: those still tracked plus
    // those that ended within it.
    const population = tracked + this.ends.length;
    const count = this.ends.length + 1;
    if (count >= this.o.minEnds && count > this.o.share * population) {
      this.openUntil = now + this.o.holdMs;
      return { end: false, opened: true };
    }
    this.ends.push(now);
    return { end: true };
  }
}

export function resolveEndBreaker(o: EndBreakerOptions | false | undefined): ResolvedEndBreaker | false {
  if (o === false) return false;
  const r = { ...END_BREAKER_DEFAULTS, ...o };
  if (!(r.share > 0 && r.share <= 1)) throw new RangeError(`KeepAlive: endBreaker.share must be in (0, 1], got ${r.share}`);
  for (const k of ['minEnds', 'windowMs', 'holdMs'] as const) {
    if (!(r[k] > 0) || !Number.isFinite(r[k])) throw new RangeError(`KeepAlive: endBreaker.${k} must be a positive number, got ${r[k]}`);
  }
  return r;
}
