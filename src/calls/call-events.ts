import type { CallOwner, CallRecord, CallSummary } from './call-types.js';

export type ChangeType = 'created' | 'updated' | 'deleted';

/**
 * The request behind a change, for the log: Graph's `request-id` (callkeeper's id of the
 * request, in its response headers and on Fastify's request log lines) and the client's
 * `client-request-id`. None for what time does (an expiry, a call becoming established).
 */
export interface RequestCause {
  requestId: string;
  clientRequestId: string;
}

/** A call a keepAlive kept: its new deadline (virtual epoch ms). */
export interface KeptAlive {
  id: string;
  owner: CallOwner;
  deadline: number;
}

/**
 * Told of every state change after it is stored. The notifier (callbacks to the bot) and
 * the scheduler listen here; they must not throw. A call ended by the expiry sweep comes as
 * a CallSummary (no resource); every other change with the whole record.
 */
export interface CallObserver {
  onCallChanged(call: CallRecord | CallSummary, change: ChangeType, cause?: RequestCause): void;
  /** A keepAlive succeeded. It changes nothing a bot is told of: only the log listens. */
  onKeptAlive?(call: KeptAlive, cause?: RequestCause): void;
}
