import type { CallNotification } from '../calls/call-notifications.js';
import type { CallOwner, CallRecord, CallState, ResultInfo } from '../calls/call-types.js';

export interface NewCall {
  id: string;
  owner: CallOwner;
  state: CallState;
  direction: 'incoming' | 'outgoing';
  createdAt: number;
  deadline: number;
  establishAt: number | null;
  resource: Record<string, unknown>;
}

/** Results an expiry sweep stamps: a missed keepAlive, or an incoming call nobody answered. */
export interface ExpiryResults {
  keepAlive: ResultInfo;
  unanswered: ResultInfo;
}

/** What the bot answered to an incoming call. */
export interface Answer {
  deadline: number;
  establishAt: number;
  /** Properties the answer sets on the call (callbackUri, mediaConfig, acceptedModalities). */
  resource: Record<string, unknown>;
}

/** A notification waiting in, or gone through, the outbox. */
export interface OutboxEntry {
  seq: number;
  callId: string;
  owner: CallOwner;
  callbackUri: string;
  notification: CallNotification;
  createdAt: number;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  nextAttemptAt: number;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: number | null;
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

export interface DeliveryQuery {
  callId?: string;
  status?: OutboxEntry['status'];
  limit: number;
}

export interface ListQuery {
  state?: 'active' | 'ended';
  appId?: string;
  /** Opaque cursor from a previous page. */
  after?: string;
  limit: number;
}

export interface ListPage {
  calls: CallRecord[];
  /** Present when more calls follow. */
  next?: string;
}

export interface NextDue {
  establishAt?: number;
  /** No call's deadline comes before this (it may be earlier than the earliest real deadline: waking then is harmless). */
  deadline?: number;
  /** The oldest end among ended calls still kept for inspection. */
  oldestEndedAt?: number;
}

/**
 * Where calls live. Every method is one atomic step: when its promise resolves the change is
 * durable (it survives the process being killed) and visible to every other callkeeper
 * instance sharing the store. Time is always passed in (`now`, virtual epoch ms); a store
 * never reads a clock. Implementations: SQLite (embedded, the default), more to come (Redis).
 * The shared contract tests in test/store-contract.ts hold every implementation to this.
 */
export interface CallStore {
  /**
   * Stores a new call, outgoing (establishing) or incoming (state incoming, deadline = when an
   * unanswered call ends), with its notifications (`notificationsFor.created`) in the outbox, in
   * one transaction. Rejects with DuplicateCallError if the id exists.
   */
  create(call: NewCall): Promise<void>;

  /**
   * The call if it is live for `owner` at `now`: it exists, belongs to that app and tenant,
   * has not ended, and its deadline is still ahead (a call past its deadline is gone even if
   * the expiry sweep has not yet run).
   */
  findLive(id: string, owner: CallOwner, now: number): Promise<CallRecord | undefined>;

  /** The call whatever its state or owner (for the control API); undefined once purged. */
  get(id: string): Promise<CallRecord | undefined>;

  /**
   * Records a successful keepAlive: sets lastKeepAliveAt = now and moves the deadline to
   * `deadline`. Only for a call live for `owner` at `now` (as findLive); returns false, and
   * changes nothing, otherwise.
   */
  keepAlive(id: string, owner: CallOwner, now: number, deadline: number): Promise<boolean>;

  /**
   * Ends a live call (owner-checked unless `owner` is null, which the control API uses):
   * state terminated, endedAt = now, resultInfo = result, and queues `notificationsFor.ended`.
   * With `onlyState`, only a call in that state ends (rejecting or redirecting needs `incoming`).
   * Returns the ended call, or undefined if it was not live (or not in that state); exactly one
   * of several concurrent ends wins.
   */
  end(id: string, owner: CallOwner | null, now: number, result: ResultInfo, onlyState?: CallState): Promise<CallRecord | undefined>;

  /**
   * The bot answers a live incoming call: it becomes establishing with the answer's deadline,
   * establishAt and properties, and `notificationsFor.answered` is queued. Undefined (no change)
   * unless the call is live, the owner's, and incoming.
   */
  answer(id: string, owner: CallOwner, now: number, answer: Answer): Promise<CallRecord | undefined>;

  /**
   * Ends up to `limit` calls whose deadline <= now, oldest deadline first, each with
   * endedAt = its deadline and `results.unanswered` for an incoming call, `results.keepAlive`
   * otherwise, queuing their notifications. Claims are exclusive: with several instances
   * sharing a store, each expired call is returned to exactly one caller.
   */
  expireDue(now: number, limit: number, results: ExpiryResults): Promise<CallRecord[]>;

  /**
   * Moves up to `limit` establishing calls whose establishAt <= now to established, queuing
   * their notifications; exclusive like expireDue.
   */
  establishDue(now: number, limit: number): Promise<CallRecord[]>;

  /**
   * Claims up to `limit` notifications to deliver now: for each call only its oldest pending
   * one (so a call's notifications go out in order), due (nextAttemptAt <= now) and not leased.
   * Claimed entries are leased until `leaseUntil`: no other claim returns them before that,
   * and if the claimer dies they come back then (at-least-once).
   */
  claimDeliveries(now: number, limit: number, leaseUntil: number): Promise<OutboxEntry[]>;

  /** Records a delivery attempt of entry `seq` and what follows: delivered, retry at a time, or dead. */
  finishDelivery(seq: number, attempt: DeliveryAttempt, outcome: DeliveryOutcome): Promise<void>;

  /** When the next pending notification is due (its next attempt, or its lease's end). */
  nextDeliveryAt(): Promise<number | undefined>;

  /** Outbox entries, newest first, with every attempt made. */
  listDeliveries(query: DeliveryQuery): Promise<(OutboxEntry & { attemptLog: DeliveryAttempt[] })[]>;

  /** The earliest pending establishment, deadline and ended call, for the scheduler to wake on. */
  nextDue(): Promise<NextDue>;

  /**
   * Deletes up to `limit` ended calls with endedAt <= before, and delivered or dead
   * notifications created before then; returns how many calls.
   */
  purgeEnded(before: number, limit: number): Promise<number>;

  /** Calls in creation order, a page at a time. */
  list(query: ListQuery): Promise<ListPage>;

  /**
   * Deletes every call, notification and delivery attempt in one transaction (the control
   * API's reset); settings (signing keys, registered apps) stay.
   */
  resetCalls(): Promise<void>;

  /** Notifications waiting to be delivered (the outbox depth, for /metrics). */
  outboxDepth(): Promise<number>;

  /** Counts of live and ended calls. */
  counts(): Promise<{ active: number; ended: number }>;

  /**
   * The value stored under `key`, storing `value` first if there is none. Concurrent callers
   * all get the same winner (for keys every instance must share, such as signing keys).
   */
  getOrInitSetting(key: string, value: string): Promise<string>;

  /** The value stored under `key`, if any. */
  getSetting(key: string): Promise<string | undefined>;

  /** Stores `value` under `key`, replacing what was there. */
  putSetting(key: string, value: string): Promise<void>;

  /** Where the data lives, for people ("memory" or a path or URL). */
  readonly location: string;

  /** Flushes and releases the store; later calls reject. */
  close(): Promise<void>;
}

export class DuplicateCallError extends Error {
  constructor(id: string) {
    super(`a call with id ${id} already exists`);
    this.name = 'DuplicateCallError';
  }
}
