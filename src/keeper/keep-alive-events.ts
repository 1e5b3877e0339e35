import type { PermanentKind } from './failure-kinds.js';

/**
 * The ids Microsoft support asks for: `clientRequestId` is the `client-request-id` the keeper
 * sent (a fresh GUID per request), `requestId` Graph's `request-id` answer header (absent when
 * no answer came).
 */
export interface RequestIds {
  requestId?: string;
  clientRequestId?: string;
}

/** A keepAlive reached Graph and was accepted (200). */
export interface SentEvent extends RequestIds {
  callId: string;
  /** When the successful request was sent (virtual epoch ms). Graph's 45 minutes run from about here. */
  sentAt: number;
  /** When the answer came. */
  at: number;
  /** Attempts it took, counting this one (1 when nothing failed). */
  attempts: number;
  /** When this call's next keepAlive is due. */
  nextAt: number;
  /** How long the request took, wall-clock ms (the token included). */
  latencyMs: number;
}

/** An attempt failed and will be retried (Graph's "call not found" is not a failure: see `ended`). */
export interface AttemptFailedEvent extends RequestIds {
  callId: string;
  /** When the failed request was sent. */
  sentAt: number;
  at: number;
  /** HTTP status, when an answer came at all. */
  status?: number;
  /** Graph's error code from the body, when there was one (e.g. "TooManyRequests"). */
  code?: string;
  /** The network or token error, when no answer came. */
  error?: Error;
  /** Failed attempts in a row for this call, this one included. */
  failures: number;
  /** Retry-After as asked by the server, ms. */
  retryAfterMs?: number;
  /** When the next attempt is due. */
  retryAt: number;
  /** The keeper's (conservative) estimate of when Graph ends the call. */
  deadline: number;
  /** Set when the failure is permanent: the call is on the slow schedule. */
  permanent?: PermanentKind;
  /** A 404 8522 not taken as an end because the end-storm breaker is open. */
  breakerOpen?: true;
  /** Wall-clock ms until the failure was known. */
  latencyMs?: number;
}

/** Graph answered 404 `8522`: the call is gone. Tracking has stopped and `onEnded` was called (once). */
export interface EndedEvent extends RequestIds {
  callId: string;
  at: number;
  status: 404;
  /** Graph's error code: "8522" (Call not found). */
  code: string;
  /** The last successful keepAlive, if any. */
  lastSuccessAt?: number;
  /** Shared keeping: the replica whose request heard the 404. */
  endedBy?: string;
}

/** The call has gone longer than `atRiskAfter` without a successful keepAlive. Once per failure streak. */
export interface AtRiskEvent extends RequestIds {
  callId: string;
  at: number;
  /** Start of the current streak: the last success, or when tracking began. */
  lastSuccessAt: number;
  deadline: number;
  failures: number;
}

/** The deadline passed with no successful keepAlive; Graph has most likely ended the call. Once per streak. */
export interface DeadlineMissedEvent extends RequestIds {
  callId: string;
  at: number;
  lastSuccessAt: number;
  deadline: number;
  failures: number;
}

/** A call's `onEnded` hook threw or rejected. */
export interface HookFailedEvent extends RequestIds {
  callId: string;
  error: unknown;
}

/**
 * A failure no fast retry fixes (see `PermanentKind`). Reported once per cause (kind, status,
 * code) until a keepAlive succeeds again; every affected call retries on the slow schedule.
 */
export interface PermanentErrorEvent extends RequestIds {
  kind: PermanentKind;
  /** The first call it was seen on. */
  callId: string;
  at: number;
  status?: number;
  code?: string;
  /** Graph's error message, or the token error's. */
  message?: string;
  /** When that call tries again. */
  retryAt: number;
}

/** More than `endBreaker.share` of the calls ended within a minute: 404s are not taken as ends until `until`. */
export interface CircuitOpenEvent extends RequestIds {
  at: number;
  /** Calls that ended within the window, before it opened. */
  ended: number;
  /** Calls tracked when it opened. */
  tracked: number;
  until: number;
  /** The call whose 404 opened it. */
  callId: string;
}

/** The breaker's hold is over: Graph's 404 8522 ends calls again. */
export interface CircuitClosedEvent {
  at: number;
}

/** Shared keeping: a Redis operation failed (it is retried; the calls this replica holds keep being sent). */
export interface SharedErrorEvent {
  at: number;
  /** The operation: "sync", "track", "record", ... */
  operation: string;
  error: Error;
}

/** Shared keeping: this replica took or gave up calls (a replica joined or left, or a lease lapsed). */
export interface RebalancedEvent {
  at: number;
  /** Calls this replica took over. */
  gained: number;
  /** Calls it handed over or lost. */
  released: number;
  /** Calls it holds now. */
  held: number;
  /** Live replicas, this one included. */
  replicas: number;
}

/** Event name to listener arguments, for `keeper.on(...)`. */
export interface KeepAliveEvents {
  sent: [SentEvent];
  attemptFailed: [AttemptFailedEvent];
  ended: [EndedEvent];
  atRisk: [AtRiskEvent];
  deadlineMissed: [DeadlineMissedEvent];
  hookFailed: [HookFailedEvent];
  permanentError: [PermanentErrorEvent];
  circuitOpen: [CircuitOpenEvent];
  circuitClosed: [CircuitClosedEvent];
  sharedError: [SharedErrorEvent];
  rebalanced: [RebalancedEvent];
}
