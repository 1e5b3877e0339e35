export type ThrottleResult = { ok: true; count: number } | { ok: false; reason: 'limited'; retryAfterMs: number };

/**
 * Request counters for throttling, shared by every instance on the store: fixed windows of
 * virtual time (`now` passed in), one counter per key and window.
 */
export interface ThrottleStore {
  /**
   * Counts one request for `key` in the window of `windowMs` holding `now` (windows start at
   * multiples of windowMs). At most `limit` requests of a window get `ok`, however many
   * instances count at once; the others get `limited` with the time left in the window.
   * A limited request is not counted.
   */
  hitThrottle(key: string, now: number, windowMs: number, limit: number): Promise<ThrottleResult>;

  /** Forgets every counter. */
  clearThrottle(): Promise<void>;
}
