import { GraphError, graphErrors } from '../errors/graph-errors.js';
import type { FaultEffect } from '../store/fault-store.js';

const BY_STATUS = {
  429: graphErrors.tooManyRequests,
  500: graphErrors.faultInternal,
  502: graphErrors.faultBadGateway,
  503: graphErrors.faultUnavailable,
  504: graphErrors.faultTimeout,
} as const;

/** The Graph error a fault's status answers with, with its Retry-After (seconds) if any. */
export function faultError(status: keyof typeof BY_STATUS, retryAfterSeconds?: number): GraphError {
  const e = BY_STATUS[status]();
  const headers: Record<string, string> = retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) };
  return new GraphError(e.status, e.code, e.message, headers, e.inner);
}

/** Wall-clock wait: latency faults slow real requests, whatever the virtual clock does. */
export function wallDelay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function hasResponse(effect: FaultEffect): boolean {
  return effect.status !== undefined || effect.reset === true;
}
