import { randomUUID } from 'node:crypto';
import { graphErrors } from '../errors/graph-errors.js';
import type { FaultEffect, FaultMatch, FaultRule, FaultTarget } from '../store/fault-store.js';

export const FAULT_STATUSES = [429, 500, 502, 503, 504] as const;

/** Longest latency a rule may add (wall clock): beyond it clients time out anyway. */
export const MAX_LATENCY_MS = 10 * 60_000;
/** Longest Retry-After a rule may send: one day. */
export const MAX_RETRY_AFTER_S = 86_400;

const bad = (detail: string) => graphErrors.invalidControlRequest({ detail });

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyKeys(o: Record<string, unknown>, allowed: string[], where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw bad(`${where}: unknown property '${k}'; allowed: ${allowed.join(', ')}.`);
}

function shortString(v: unknown, name: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 500)
    throw bad(`'${name}' must be a non-empty string of at most 500 characters.`);
  return v;
}

function parseMatch(v: unknown): FaultMatch {
  if (v === undefined) return {};
  if (!isObject(v)) throw bad("'match' must be an object.");
  onlyKeys(v, ['method', 'path', 'appId', 'callId'], 'match');
  const m: FaultMatch = {};
  if (v.method !== undefined) {
    const method = shortString(v.method, 'match.method').toUpperCase();
    if (!/^[A-Z]+$/.test(method)) throw bad("'match.method' must be an HTTP method such as POST.");
    m.method = method;
  }
  if (v.path !== undefined) {
    const path = shortString(v.path, 'match.path');
    if (!path.startsWith('/') && !path.startsWith('*'))
      throw bad('\'match.path\' is a glob over the path after the version, such as "/communications/calls/*/keepAlive".');
    m.path = path;
  }
  if (v.appId !== undefined) m.appId = shortString(v.appId, 'match.appId');
  if (v.callId !== undefined) m.callId = shortString(v.callId, 'match.callId');
  return m;
}

function parseEffect(v: unknown, target: FaultTarget): FaultEffect {
  if (!isObject(v)) throw bad('\'effect\' must be an object: {"status"?, "retryAfter"?, "latencyMs"?, "reset"?}.');
  onlyKeys(v, ['status', 'retryAfter', 'latencyMs', 'reset'], 'effect');
  const e: FaultEffect = {};
  if (v.status !== undefined) {
    if (!FAULT_STATUSES.includes(v.status as (typeof FAULT_STATUSES)[number]))
      throw bad(`'effect.status' must be one of ${FAULT_STATUSES.join(', ')}.`);
    e.status = v.status as FaultEffect['status'] & number;
  }
  if (v.retryAfter !== undefined) {
    if (!Number.isInteger(v.retryAfter) || (v.retryAfter as number) < 0 || (v.retryAfter as number) > MAX_RETRY_AFTER_S)
      throw bad(`'effect.retryAfter' must be a whole number of seconds from 0 to ${MAX_RETRY_AFTER_S}.`);
    if (e.status === undefined) throw bad("'effect.retryAfter' goes with 'effect.status'.");
    e.retryAfter = v.retryAfter as number;
  }
  if (v.latencyMs !== undefined) {
    if (!Number.isInteger(v.latencyMs) || (v.latencyMs as number) < 0 || (v.latencyMs as number) > MAX_LATENCY_MS)
      throw bad(`'effect.latencyMs' must be a whole number of milliseconds from 0 to ${MAX_LATENCY_MS}.`);
    e.latencyMs = v.latencyMs as number;
  }
  if (v.reset !== undefined) {
    if (v.reset !== true) throw bad("'effect.reset' can only be true.");
    if (e.status !== undefined) throw bad("'effect.reset' and 'effect.status' exclude each other.");
    e.reset = true;
  }
  if (e.status === undefined && e.latencyMs === undefined && e.reset === undefined)
    throw bad("'effect' needs at least one of 'status', 'latencyMs' or 'reset'.");
  if (target === 'notifications' && e.retryAfter !== undefined) throw bad("'effect.retryAfter' has no meaning for notifications.");
  return e;
}

/**
 * Validates a fault rule as posted (`POST /_callkeeper/faults`, the config file's `faults`,
 * `--fault`) and gives it an id. `now` is the virtual time of its creation.
 */
export function parseFaultRule(body: unknown, now: number, id: string = randomUUID()): FaultRule {
  if (!isObject(body))
    throw bad('A fault rule is a JSON object: {"match": {...}, "effect": {...}, "rate"?, "count"?, "until"?, "target"?}.');
  onlyKeys(body, ['match', 'effect', 'rate', 'count', 'until', 'target'], 'fault rule');
  let target: FaultTarget = 'graph';
  if (body.target !== undefined) {
    if (body.target !== 'graph' && body.target !== 'notifications') throw bad("'target' must be 'graph' or 'notifications'.");
    target = body.target;
  }
  const match = parseMatch(body.match);
  if (target === 'notifications' && match.method !== undefined)
    throw bad("'match.method' has no meaning for notifications (they are all POSTs).");
  const effect = parseEffect(body.effect, target);
  let rate = 1;
  if (body.rate !== undefined) {
    if (typeof body.rate !== 'number' || !(body.rate >= 0 && body.rate <= 1)) throw bad("'rate' must be a number from 0 to 1.");
    rate = body.rate;
  }
  let count: number | null = null;
  if (body.count !== undefined) {
    if (!Number.isInteger(body.count) || (body.count as number) < 1 || (body.count as number) > 1e9)
      throw bad("'count' must be a whole number from 1 to 1000000000.");
    count = body.count as number;
  }
  let until: number | null = null;
  if (body.until !== undefined) {
    const t = typeof body.until === 'string' && /^\d{4}-\d\d-\d\dT/.test(body.until) ? Date.parse(body.until) : Number.NaN;
    if (!Number.isFinite(t)) throw bad('\'until\' must be an ISO 8601 time such as "2026-12-01T18:00:00Z".');
    until = t;
  }
  return { id, target, match, effect, rate, count, remaining: count, until, createdAt: now };
}

/** A rule as the control API shows it. */
export function describeFault(r: FaultRule) {
  return {
    id: r.id,
    target: r.target,
    match: r.match,
    effect: r.effect,
    rate: r.rate,
    count: r.count,
    remaining: r.remaining,
    until: r.until === null ? null : new Date(r.until).toISOString(),
    createdDateTime: new Date(r.createdAt).toISOString(),
  };
}
