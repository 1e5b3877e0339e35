/** A keepAlive reached Graph and was accepted (200). */
export interface SentEvent {
  callId: string;
  /** When the successful request was sent (virtual epoch ms). Graph's 45 minutes run from about here. */
  sentAt: number;
  /** When the answer came. */
  at: number;
  /** Attempts it took, counting this one (1 when nothing failed). */
  attempts: number;
  /** When this call's next keepAlive is due. */
  nextAt: number;
}

/** An attempt failed and will be retried (a 404 is not a failure: see `ended`). */
export interface AttemptFailedEvent {
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
}

/** Graph answered 404: the call is gone. Tracking has stopped and `onEnded` was called (once). */
export interface EndedEvent {
  callId: string;
  at: number;
  status: 404;
  /** Graph's error code, "8522" (Call not found) for a call that ended. */
  code?: string;
  /** The last successful keepAlive, if any. */
  lastSuccessAt?: number;
}

/** The call has gone longer than `atRiskAfter` without a successful keepAlive. Once per failure streak. */
export interface AtRiskEvent {
  callId: string;
  at: number;
  /** Start of the current streak: the last success, or when tracking began. */
  lastSuccessAt: number;
  deadline: number;
  failures: number;
}

/** The deadline passed with no successful keepAlive; Graph has most likely ended the call. Once per streak. */
export interface DeadlineMissedEvent {
  callId: string;
  at: number;
  lastSuccessAt: number;
  deadline: number;
  failures: number;
}

/** A call's `onEnded` hook threw or rejected. */
export interface HookFailedEvent {
  callId: string;
  error: unknown;
}

/** Event name to listener arguments, for `keeper.on(...)`. */
export interface KeepAliveEvents {
  sent: [SentEvent];
  attemptFailed: [AttemptFailedEvent];
  ended: [EndedEvent];
  atRisk: [AtRiskEvent];
  deadlineMissed: [DeadlineMissedEvent];
  hookFailed: [HookFailedEvent];
}
