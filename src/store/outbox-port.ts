import type { CallNotification } from '../calls/call-notifications.js';
import type { CallOwner, CallState, ResultInfo } from '../calls/call-types.js';

/** The call as it was when a transition happened: what the notification renderer needs. */
export interface CallSnapshot {
  id: string;
  owner: CallOwner;
  direction: 'incoming' | 'outgoing';
  /** The state the transition left the call in. */
  state: CallState;
  resource: Record<string, unknown>;
}

/** Which call transition a fact records. */
export type Transition = 'created' | 'answered' | 'established' | 'ended';

/**
 * A fact the outbox keeps: what happened to a call. The store records facts, never renders
 * them; src/notifications/render.ts turns a fact into what the bot receives. Call transitions
 * (which a store, or a Lua script, decides on its own, as an expiry) are kept as the transition,
 * the result and the call as it was. What the domain itself decided to tell (bot actions: a
 * roster, an operation's completion) comes as the domain's notification, kept as given.
 */
export type OutboxFact =
  | {
      transition: Transition;
      /** How the call ended (`ended` only). */
      result: ResultInfo | null;
      snapshot: CallSnapshot;
    }
  | { transition: 'notification'; notification: CallNotification };

/** An outbox entry waiting to be delivered, or gone through. */
export interface OutboxEntry {
  seq: number;
  callId: string;
  owner: CallOwner;
  callbackUri: string;
  fact: OutboxFact;
  createdAt: number;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  nextAttemptAt: number;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: number | null;
  /**
   * The fencing token of the claim that returned this entry (0 if never claimed). Each claim
   * issues a larger one; finishing with an older token changes nothing.
   */
  lease: number;
  /** Why it is dead, when the outbox bound (not the retry window) dead-lettered it. */
  deadReason?: 'overflow' | null;
}

export interface DeliveryAttempt {
  attempt: number;
  at: number;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  outcome: 'delivered' | 'retry' | 'dead';
}

export type DeliveryOutcome = { status: 'delivered' } | { status: 'pending'; nextAttemptAt: number } | { status: 'dead' };

export type FinishResult = { ok: true } | { ok: false; reason: 'staleLease' | 'notFound' };

export interface DeliveryQuery {
  callId?: string;
  status?: OutboxEntry['status'];
  limit: number;
}

/**
 * How many undelivered entries the outbox holds at most. When a new fact would pass a bound,
 * the oldest pending entry (of that call for the per-call bound, of all for the global one) is
 * dead-lettered with deadReason 'overflow' and counted (OutboxStats.overflowed), so a bot that
 * never answers cannot grow the store without end or slow the others.
 */
export interface OutboxBounds {
  perCall: number;
  total: number;
}

export const DEFAULT_OUTBOX_BOUNDS: OutboxBounds = { perCall: 100, total: 100_000 };

export interface OutboxStats {
  pending: number;
  /** Entries dead-lettered by the bounds since the store was created (a counter for metrics). */
  overflowed: number;
}

/** The outbox port: at-least-once, in-order-per-call delivery with fenced leases. */
export interface OutboxPort {
  /**
   * Claims up to `limit` entries to deliver now: for each call only its oldest pending one
   * (so a call's notifications go out in order), due (nextAttemptAt <= now) and not leased.
   * Claimed entries are leased until `leaseUntil` and carry a fresh fencing token (`lease`):
   * no other claim returns them before then, and if the claimer dies they come back then
   * (at-least-once) under a new token.
   */
  claimDeliveries(now: number, limit: number, leaseUntil: number): Promise<OutboxEntry[]>;

  /**
   * Records a delivery attempt of entry `seq` under the claim `lease` and what follows:
   * delivered, retry at a time, or dead; a delivered or dead entry lets its call's next one be
   * claimed. With a token other than the entry's latest (its lease ran out and another
   * instance claimed it, or the bound dead-lettered it) nothing changes: `staleLease`.
   */
  finishDelivery(seq: number, lease: number, attempt: DeliveryAttempt, outcome: DeliveryOutcome): Promise<FinishResult>;

  /** When the next pending entry is due (its next attempt, or its lease's end). */
  nextDeliveryAt(): Promise<number | undefined>;

  /** Outbox entries, newest first, with every attempt made. */
  listDeliveries(query: DeliveryQuery): Promise<(OutboxEntry & { attemptLog: DeliveryAttempt[] })[]>;

  /** Pending count and the overflow counter. */
  outboxStats(): Promise<OutboxStats>;

  /** Entries waiting to be delivered (the outbox depth, for /metrics): outboxStats().pending. */
  outboxDepth(): Promise<number>;
}
