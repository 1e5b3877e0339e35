import type { CallOwner, CallRecord, CallState, CallSummary, ResultInfo } from '../calls/call-types.js';
import type { WriteResult } from './results.js';

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
 * The calls port. Every method is one atomic step: when its promise resolves the change is
 * durable (as the store's durability allows, see docs/architecture.md) and visible to every
 * other callkeeper instance sharing the store. Time is always passed in (`now`, virtual epoch
 * ms); a store never reads a clock. Every transition queues its outbox fact (see
 * outbox-port.ts) in the same step, so no acknowledged change loses its notification.
 * A store that cannot be reached rejects with StoreUnavailableError.
 */
export interface CallsPort {
  /**
   * Stores a new call, outgoing (establishing) or incoming (state incoming, deadline = when an
   * unanswered call ends), with its `created` fact in the outbox, in one step. Rejects with
   * DuplicateCallError if the id exists.
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
   * `deadline`. Only for a call live for `owner` at `now` (as findLive); otherwise
   * `notFound` and nothing changes. One round trip on a networked store.
   */
  keepAlive(id: string, owner: CallOwner, now: number, deadline: number): Promise<WriteResult<undefined>>;

  /**
   * Ends a live call (owner-checked unless `owner` is null, which the control API uses):
   * state terminated, endedAt = now, resultInfo = result, and queues an `ended` fact.
   * With `onlyState`, only a call in that state ends (rejecting or redirecting needs `incoming`):
   * a live call in another state is `wrongState` (with its state). Exactly one of several
   * concurrent ends wins; the others are `notFound`.
   */
  end(id: string, owner: CallOwner | null, now: number, result: ResultInfo, onlyState?: CallState): Promise<WriteResult<CallRecord>>;

  /**
   * The bot answers a live incoming call: it becomes establishing with the answer's deadline,
   * establishAt and properties, and an `answered` fact is queued. `notFound` unless the call is
   * live and the owner's; `wrongState` if it is, but no longer incoming.
   */
  answer(id: string, owner: CallOwner, now: number, answer: Answer): Promise<WriteResult<CallRecord>>;

  /**
   * Ends up to `limit` calls whose deadline <= now, oldest deadline first, each with
   * endedAt = its deadline and `results.unanswered` for an incoming call, `results.keepAlive`
   * otherwise, queuing their `ended` facts. Claims are exclusive: with several instances
   * sharing a store, each expired call is returned to exactly one caller. Returns the ended
   * calls as CallSummary: a store may leave out the resource of outgoing calls (the facts
   * carry it), so a mass expiry reads and parses none; incoming calls come with it.
   */
  expireDue(now: number, limit: number, results: ExpiryResults): Promise<CallSummary[]>;

  /**
   * Moves up to `limit` establishing calls whose establishAt <= now to established, queuing
   * their `established` facts; exclusive like expireDue.
   */
  establishDue(now: number, limit: number): Promise<CallRecord[]>;

  /** The earliest pending establishment, deadline and ended call, for the scheduler to wake on. */
  nextDue(): Promise<NextDue>;

  /**
   * Deletes up to `limit` ended calls with endedAt <= before, and delivered or dead
   * outbox entries created before then (through indexes: the cost follows what is deleted,
   * not the outbox's size); returns how many calls.
   */
  purgeEnded(before: number, limit: number): Promise<number>;

  /** Calls in creation order, a page at a time. */
  list(query: ListQuery): Promise<ListPage>;

  /** Counts of live and ended calls. */
  counts(): Promise<{ active: number; ended: number }>;

  /**
   * Deletes every call, outbox entry and delivery attempt in one step (the control API's reset);
   * settings, apps and the clock stay.
   */
  resetCalls(): Promise<void>;
}
