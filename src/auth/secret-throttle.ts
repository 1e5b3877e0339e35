/**
 * Slows down guessing of client secrets at the token endpoint: after `maxFailures` wrong
 * secrets within `windowMs` (wall clock) for one client id from one source, or from one source
 * for any client ids, that client id (from that source), or that source, is refused with 429
 * until the window has passed: a guess rate of 10 a minute instead of thousands a second.
 * Memory is bounded: at most `maxKeys` sources and pairs are remembered (oldest forgotten first).
 */
export interface SecretThrottleOptions {
  maxFailures: number;
  windowMs: number;
  maxKeys: number;
}

export const DEFAULT_SECRET_THROTTLE: SecretThrottleOptions = { maxFailures: 10, windowMs: 60_000, maxKeys: 10_000 };

export class SecretThrottle {
  /** Key → times of its recent failures, oldest first (at most maxFailures of them). */
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly now: () => number,
    private readonly options: SecretThrottleOptions = DEFAULT_SECRET_THROTTLE,
  ) {}

  /** How long (ms) a request of this client id from this source must wait; 0: it may try now. */
  waitMs(clientId: string, source: string): number {
    const now = this.now();
    let wait = 0;
    for (const key of keysOf(clientId, source)) {
      const times = this.recent(key, now);
      if (times.length >= this.options.maxFailures) wait = Math.max(wait, (times[0] as number) + this.options.windowMs - now);
    }
    return wait;
  }

  /** Counts a wrong secret. */
  failed(clientId: string, source: string): void {
    const now = this.now();
    for (const key of keysOf(clientId, source)) {
      const times = this.recent(key, now);
      times.push(now);
      if (times.length > this.options.maxFailures) times.shift();
      // Re-inserted last: the map's order is least recently failed first.
      this.failures.delete(key);
      this.failures.set(key, times);
    }
    while (this.failures.size > this.options.maxKeys) {
      const oldest = this.failures.keys().next().value as string;
      this.failures.delete(oldest);
    }
  }

  private recent(key: string, now: number): number[] {
    const times = this.failures.get(key) ?? [];
    while (times.length > 0 && (times[0] as number) <= now - this.options.windowMs) times.shift();
    return times;
  }
}

function keysOf(clientId: string, source: string): string[] {
  return [`source ${source}`, `client ${clientId.toLowerCase()} from ${source}`];
}
