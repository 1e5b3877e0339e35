import type { Dispatcher } from 'undici';
import type { Clock } from '../clock/clock.js';
import { type EndBreakerOptions, type ResolvedEndBreaker, resolveEndBreaker } from './end-breaker.js';
import type { FetchLike } from './http-send.js';
import type { KeeperLogger } from './keeper-logger.js';
import { RETRY_DEFAULTS, type ResolvedRetry, type RetryOptions } from './retry-policy.js';
import type { SharedOptions } from './shared/shared-keeping.js';
import type { GetToken, TokenCredentialLike } from './token-source.js';

const MINUTE = 60_000;

/** Where one call's keepAlives go and with which token: per call, or per tenant from `tenants`. */
export interface CallTarget {
  /** Graph's service root for this call. Default: the keeper's `baseUrl`. */
  baseUrl?: string;
  /** Tokens for this call... */
  getToken?: GetToken;
  /** ...or a TokenCredential. Default: the keeper's own. */
  credential?: TokenCredentialLike;
  /** Scopes asked of `credential`. Default: the keeper's `scopes`. */
  scopes?: string[];
}

/** Options of `new KeepAlive(...)`. Durations are milliseconds of the clock's (virtual) time unless said otherwise. */
export interface KeepAliveOptions {
  /** Graph's service root, e.g. `https://graph.microsoft.com/v1.0`; calls live under `/communications/calls`. */
  baseUrl: string;
  /**
   * Multi-tenant bots: the target of a call tracked with `{ tenant }`, asked once per tenant
   * (the answer is kept). Calls without a tenant use the keeper's own baseUrl and tokens.
   */
  tenants?: (tenant: string) => CallTarget;
  /** A pino-compatible logger (`logger.warn(obj, msg)`). Default: none. */
  logger?: KeeperLogger;
  /** The end-storm circuit breaker (see README); `false` turns it off. */
  endBreaker?: EndBreakerOptions | false;
  /** This keeper's name in `calls()` (lease holder) and in shared keeping. Default host-pid-random. */
  replicaId?: string;
  /**
   * Shared keeping on Redis: replicas given the same Redis and namespace share the tracked calls,
   * and exactly one of them sends each call's keepAlives. Default: this process keeps its own calls.
   */
  shared?: SharedOptions;
  /** Where tokens come from: a function... */
  getToken?: GetToken;
  /** ...or an @azure/identity TokenCredential (or anything with its shape). */
  credential?: TokenCredentialLike;
  /** Scopes asked of `credential`. Default `['https://graph.microsoft.com/.default']`. */
  scopes?: string[];
  /** How often each call gets a keepAlive. Default 15 minutes (Microsoft's advice). */
  interval?: number;
  /** How long Graph keeps a call without a keepAlive. Default 45 minutes. */
  timeout?: number;
  /** A call with no success for this long is reported `atRisk`. Default `timeout - interval` (30 minutes). */
  atRiskAfter?: number;
  /** Most requests in flight at once. Default 64. */
  maxConcurrency?: number;
  /**
   * Most requests per second (virtual). Default: twice the mean rate (tracked calls / interval),
   * at least 2/s. Only bites when a backlog would otherwise go out at once.
   */
  maxRate?: number;
  /** Retry tuning. */
  retry?: RetryOptions;
  /**
   * The keeper wakes up on multiples of this (virtual ms) and sends everything that fell due
   * since: fewer wake-ups, less CPU, sends at most this much later than planned. Default 1 s.
   */
  tickMs?: number;
  /** Network timeout per request, in wall-clock ms. Default 30 s. */
  requestTimeoutMs?: number;
  /** The time source. Default: the wall clock (`new ScaledClock()`). */
  clock?: Clock;
  /** undici dispatcher to send through. Default: a pool of the keeper's own (closed by `close()`). */
  dispatcher?: Dispatcher;
  /** Or send through this fetch (global fetch, undici's, a wrapper). Takes precedence over `dispatcher`. */
  fetch?: FetchLike;
  /** Source of randomness for retry jitter, in [0, 1). Default Math.random. */
  random?: () => number;
}

export interface ResolvedOptions {
  callsUrl: string;
  interval: number;
  timeout: number;
  atRiskAfter: number;
  maxConcurrency: number;
  maxRate: number | undefined;
  retry: ResolvedRetry;
  endBreaker: ResolvedEndBreaker | false;
  requestTimeoutMs: number;
  tickMs: number;
  random: () => number;
}

function positive(name: string, v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`KeepAlive: ${name} must be a positive number, got ${v}`);
  return v;
}

/** `{baseUrl}/communications/calls`, after checking baseUrl is an http(s) URL. */
export function callsUrlOf(baseUrl: unknown): string {
  if (typeof baseUrl !== 'string' || !/^https?:\/\//.test(baseUrl)) {
    throw new TypeError(`KeepAlive: baseUrl must be an http(s) URL such as https://graph.microsoft.com/v1.0, got ${String(baseUrl)}`);
  }
  return `${baseUrl.replace(/\/+$/, '')}/communications/calls`;
}

export function resolveOptions(o: KeepAliveOptions): ResolvedOptions {
  const callsUrl = callsUrlOf(o.baseUrl);
  const interval = positive('interval', o.interval ?? 15 * MINUTE);
  const timeout = positive('timeout', o.timeout ?? 45 * MINUTE);
  if (interval >= timeout) throw new RangeError(`KeepAlive: interval (${interval} ms) must be shorter than timeout (${timeout} ms)`);
  // With short timeouts (a callkeeper server told --keepalive-timeout 20s) the default margin
  // shrinks to half the slack, so interval and margin still fit in the timeout.
  const margin = Math.min(RETRY_DEFAULTS.safetyMarginMs, (timeout - interval) / 2);
  const retry: ResolvedRetry = { ...RETRY_DEFAULTS, safetyMarginMs: margin, ...o.retry };
  for (const [k, v] of Object.entries(retry)) if (k !== 'safetyMarginMs') positive(`retry.${k}`, v);
  if (!(retry.safetyMarginMs >= 0)) throw new RangeError('KeepAlive: retry.safetyMarginMs must be zero or more');
  if (interval + retry.safetyMarginMs >= timeout) {
    throw new RangeError(`KeepAlive: interval (${interval} ms) plus the safety margin must be shorter than timeout (${timeout} ms)`);
  }
  const maxConcurrency = o.maxConcurrency ?? 64;
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1)
    throw new RangeError('KeepAlive: maxConcurrency must be a whole number >= 1');
  return {
    callsUrl,
    interval,
    timeout,
    atRiskAfter: positive('atRiskAfter', o.atRiskAfter ?? Math.max(interval, timeout - interval)),
    maxConcurrency,
    maxRate: o.maxRate === undefined ? undefined : positive('maxRate', o.maxRate),
    retry,
    endBreaker: resolveEndBreaker(o.endBreaker),
    requestTimeoutMs: positive('requestTimeoutMs', o.requestTimeoutMs ?? 30_000),
    tickMs: positive('tickMs', o.tickMs ?? 1000),
    random: o.random ?? Math.random,
  };
}
