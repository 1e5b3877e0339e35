/** When to try a failed delivery again: exponential backoff with jitter, within a window. */
export interface RetrySchedule {
  /** First retry delay, virtual ms. */
  baseMs: number;
  /** Longest delay between attempts, virtual ms. */
  maxMs: number;
  /** Give up (dead-letter) once a notification is older than this, virtual ms. */
  retryForMs: number;
}

export const DEFAULT_RETRY: RetrySchedule = { baseMs: 1_000, maxMs: 60_000, retryForMs: 60 * 60_000 };

/**
 * The next attempt after `attempts` failed ones, or undefined when the window is spent.
 * "Equal jitter": half the backoff fixed, half random, so retries neither synchronise nor
 * collapse to zero.
 */
export function nextAttemptAt(
  s: RetrySchedule,
  attempts: number,
  now: number,
  createdAt: number,
  random: () => number,
): number | undefined {
  const backoff = Math.min(s.maxMs, s.baseMs * 2 ** Math.max(0, attempts - 1));
  const at = now + Math.ceil(backoff / 2 + (random() * backoff) / 2);
  return at - createdAt > s.retryForMs ? undefined : at;
}

/** Worth retrying: the receiver may accept it later. Other 4xx are the bot refusing it. */
export function isRetryable(status: number | null): boolean {
  return status === null || status === 408 || status === 425 || status === 429 || status >= 500;
}
