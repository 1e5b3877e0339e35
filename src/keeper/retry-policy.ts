/** How failed keepAlives are retried. All durations are virtual milliseconds. */
export interface RetryOptions {
  /** First retry delay (before jitter). Default 1 s. */
  baseDelayMs?: number;
  /** Longest delay between two attempts for one call (before Retry-After). Default 60 s. */
  maxDelayMs?: number;
  /**
   * Attempts are aimed at the call's deadline minus this much, to leave room for the
   * request's own latency and clock skew. Default 30 s (or half of timeout - interval, if less).
   */
  safetyMarginMs?: number;
  /** Retries inside the safety margin are never closer together than this. Default 1 s. */
  minGapMs?: number;
  /**
   * The slow schedule: delay between attempts after a permanent error (400, 403, 401 with a
   * fresh token, a 404 without 8522, invalid_client). Still never past a call's last chance. Default 5 minutes.
   */
  permanentDelayMs?: number;
}

export type ResolvedRetry = Required<RetryOptions>;

export const RETRY_DEFAULTS: ResolvedRetry = {
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  safetyMarginMs: 30_000,
  minGapMs: 1_000,
  permanentDelayMs: 5 * 60_000,
};

/** The slow schedule's delay: `permanentDelayMs`, 20% of it random so calls that failed together drift apart. */
export function slowDelay(retry: ResolvedRetry, random: () => number): number {
  return retry.permanentDelayMs * (0.8 + 0.2 * random());
}

/** After a permanent error: the slow delay, but not past the last chance (one try there may still save the call). */
export function nextSlowAttemptAt(now: number, deadline: number, delay: number, retry: ResolvedRetry): number {
  const lastChance = deadline - retry.safetyMarginMs;
  if (now < lastChance) return Math.min(now + delay, lastChance);
  return now + delay;
}

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries of
 * many calls that failed together drift apart yet none retries almost at once.
 */
export function backoffDelay(failures: number, retry: ResolvedRetry, random: () => number): number {
  const exp = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return exp / 2 + random() * (exp / 2);
}

/**
 * A Retry-After header as milliseconds: either delta-seconds or an HTTP date. A date is read
 * against the response's own Date header when there is one (so the two clocks' skew cancels),
 * otherwise against `now`. Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, date: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  const reference = date === undefined ? Number.NaN : Date.parse(date);
  return Math.max(0, at - (Number.isNaN(reference) ? now : reference));
}

/**
 * When to try a failing call again.
 * - Normally after the backoff delay, or Retry-After if that is longer.
 * - Never later than the last chance (deadline minus the safety margin): while the call can
 *   still be saved, no delay, not even Retry-After, makes us skip our chance.
 * - Past the last chance and before the deadline: halve the time that is left, down to
 *   `minGapMs`; a few more tries that may still land in time.
 * - Past the deadline the call is probably gone; keep asking at the backoff pace until Graph
 *   says 404 (ended) or 200 (our estimate was too pessimistic).
 */
export function nextAttemptAt(now: number, deadline: number, delay: number, retry: ResolvedRetry): number {
  const wanted = now + delay;
  const lastChance = deadline - retry.safetyMarginMs;
  if (wanted <= lastChance) return wanted;
  if (now < lastChance) return lastChance;
  const half = (deadline - now) / 2;
  if (half >= retry.minGapMs) return Math.min(wanted, now + half);
  return wanted;
}
