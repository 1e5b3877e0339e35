import { randomUUID } from 'node:crypto';
import type { Cloud } from '../auth/clouds.js';
import { checkCreatePermission } from '../auth/permissions.js';
import type { Clock } from '../clock/clock.js';
import { graphErrors } from '../errors/graph-errors.js';
import type { CallsPort } from '../store/calls-port.js';
import type { Refusal } from '../store/results.js';
import type { CallObserver, ChangeType, RequestCause } from './call-events.js';
import { newCallId } from './call-ids.js';
import {
  APP_HANGUP_RESULT,
  answerWindowMs,
  type CallOwner,
  type CallRecord,
  type CallResource,
  type CallSummary,
  KEEPALIVE_TIMEOUT_RESULT,
  REDIRECTED_RESULT,
  REJECT_RESULTS,
  REMOTE_HANGUP_RESULT,
  type ResultInfo,
  UNANSWERED_RESULT,
} from './call-types.js';
import { peerParticipantId } from './participants.js';
import { validateCreateCall } from './validate-create.js';
import { type RungBot, validateAnswer, validateIncoming, validateRedirect, validateReject } from './validate-incoming.js';

export interface CallServiceConfig {
  /** A call ends this long after its start or last successful keepAlive (Graph: 45 min). */
  keepAliveTimeoutMs: number;
  /** How long (virtual) an outgoing call stays establishing. */
  establishDelayMs: number;
  /** Graph's callbackUri rule exactly (https only). */
  strictCallbackUri: boolean;
  /** Ended calls stay visible in the control API this long, then are purged. */
  endedRetentionMs: number;
  /**
   * Wall time one expiry step aims at (EXPIRY_STEP_MS): how long a request arriving during a
   * mass expiry may wait for the step in progress.
   */
  expiryStepMs?: number;
  /** The wall clock (ms, any origin) expiry steps are timed on; performance.now by default. */
  stepClock?: () => number;
}

/** The calling app: its identity as a call's source participant, and its granted roles. */
export interface AppIdentity extends CallOwner {
  displayName: string;
  roles: readonly string[];
  /** The cloud whose Graph the call is created in; its id says so (call-ids.ts). Default global. */
  cloud?: Cloud['name'];
}

const BATCH = 1000;
/**
 * An expiry step (one store transaction) is sized by time, not by count: each ends as many calls
 * as the last full step says fit in EXPIRY_STEP_MS, so requests arriving during a mass expiry
 * (100,000 calls on one deadline) wait for one step of about that long, not for all, on a fast
 * machine or a loaded one alike. Larger steps mean fewer commits: 200 calls a step spent about a
 * quarter of a sweep's CPU in its 500 commits and their WAL frames (docs/benchmarks.md).
 */
export const EXPIRY_STEP_MS = 10;
/**
 * Bounds of a step's size: the first step of a sweep uses the last size learned, at first 200;
 * never fewer than the fixed 200 this replaced (a loaded machine commits no more often than it did).
 */
export const EXPIRY_STEP_CALLS = { first: 200, min: 200, max: 5000 } as const;

/**
 * The Graph error for a store's refusal: 404 if the call is not the owner's live call; 400 if
 * it is, but not in the state the request needs (answer, reject, redirect: incoming).
 */
function refused(r: Refusal) {
  return r.reason === 'wrongState' ? graphErrors.callNotIncoming({ state: r.state }) : graphErrors.callNotFound();
}

/**
 * An embedded store answers synchronously, so awaiting it never lets I/O in: between batches of
 * a mass expiry, step aside so requests keep being served.
 */
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Calls the next expiry step should end, given that the last full one ended `calls` in `elapsedMs`. */
export function nextStepSize(calls: number, elapsedMs: number, targetMs: number): number {
  const { min, max } = EXPIRY_STEP_CALLS;
  if (!(elapsedMs > 0)) return max;
  return Math.max(min, Math.min(max, Math.round((calls * targetMs) / elapsedMs)));
}

/** The calls domain: what each Graph and control operation does, independent of HTTP. */
export class CallService {
  private readonly observers: CallObserver[] = [];
  /**
   * The earliest moment an ended call is old enough to purge, as far as this instance knows:
   * from nextDueAt, lowered by every end it tells its observers of. Unknown (-Infinity) at first.
   * The sweep purges only from then on: a purge transaction on every sweep (1,000 a second with
   * deadlines spread one a millisecond) found nothing almost every time.
   */
  private purgeAt = Number.NEGATIVE_INFINITY;
  /** Calls the next expiry step ends (see EXPIRY_STEP_MS). */
  private expiryStep: number = EXPIRY_STEP_CALLS.first;

  constructor(
    private readonly store: CallsPort,
    private readonly clock: Clock,
    readonly config: CallServiceConfig,
  ) {}

  observe(observer: CallObserver): void {
    this.observers.push(observer);
  }

  async create(app: AppIdentity, input: unknown, cause?: RequestCause): Promise<CallRecord> {
    const { body, kind, appHostedMedia } = validateCreateCall(input, { strictCallbackUri: this.config.strictCallbackUri });
    checkCreatePermission(app.roles, kind, appHostedMedia);
    const now = this.clock.now();
    const id = newCallId(app.cloud);
    // source and tenantId given by the request are echoed (a PSTN call's application instance,
    // a meeting's tenant: application-post-calls.md); otherwise they are the app's.
    const resource = {
      ...body,
      tenantId: typeof body.tenantId === 'string' ? body.tenantId : app.tenantId,
      myParticipantId: randomUUID(),
      callChainId: typeof body.callChainId === 'string' ? body.callChainId : randomUUID(),
      source: body.source ?? {
        '@odata.type': '#microsoft.graph.participantInfo',
        identity: {
          '@odata.type': '#microsoft.graph.identitySet',
          application: { '@odata.type': '#microsoft.graph.identity', displayName: app.displayName, id: app.appId },
        },
      },
    };
    await this.store.create({
      id,
      owner: { appId: app.appId, tenantId: app.tenantId },
      state: 'establishing',
      direction: 'outgoing',
      createdAt: now,
      deadline: now + this.config.keepAliveTimeoutMs,
      establishAt: now + this.config.establishDelayMs,
      resource,
    });
    const call: CallRecord = {
      id,
      owner: { appId: app.appId, tenantId: app.tenantId },
      state: 'establishing',
      direction: 'outgoing',
      createdAt: now,
      lastKeepAliveAt: null,
      deadline: now + this.config.keepAliveTimeoutMs,
      establishAt: now + this.config.establishDelayMs,
      endedAt: null,
      resultInfo: null,
      resource,
    };
    this.emit(call, 'created', cause);
    return call;
  }

  async get(owner: CallOwner, id: string): Promise<CallRecord> {
    const call = await this.store.findLive(id, owner, this.clock.now());
    if (!call) throw graphErrors.callNotFound();
    return call;
  }

  async keepAlive(owner: CallOwner, id: string, cause?: RequestCause): Promise<void> {
    const now = this.clock.now();
    const deadline = now + this.config.keepAliveTimeoutMs;
    const kept = await this.store.keepAlive(id, owner, now, deadline);
    if (!kept.ok) throw refused(kept);
    for (const o of this.observers) o.onKeptAlive?.({ id, owner, deadline }, cause);
  }

  /** The bot hangs up (DELETE). */
  async hangUp(owner: CallOwner, id: string, cause?: RequestCause): Promise<CallRecord> {
    const ended = await this.store.end(id, owner, this.clock.now(), APP_HANGUP_RESULT);
    if (!ended.ok) throw refused(ended);
    this.emit(ended.value, 'deleted', cause);
    return ended.value;
  }

  /**
   * Control API: a call rings the bot. The bot learns of it by a `created` notification and has
   * 15 s to answer, reject or redirect it (5 s for a policy-based recording call); unanswered, it ends.
   */
  async ring(input: unknown, bot?: RungBot, cause?: RequestCause): Promise<CallRecord> {
    const ring = validateIncoming(input, { strictCallbackUri: this.config.strictCallbackUri, bot });
    const now = this.clock.now();
    const id = randomUUID();
    const resource: CallResource = { ...ring.resource, tenantId: ring.tenantId, myParticipantId: randomUUID(), callChainId: randomUUID() };
    if (ring.policyBasedRecording) {
      // The caller is the one recorded, and the one whose call brought the bot in (call-answer.md,
      // incomingContext; the recording samples check observed == source).
      const caller = peerParticipantId(id, 0);
      resource.incomingContext = {
        '@odata.type': '#microsoft.graph.incomingContext',
        observedParticipantId: caller,
        sourceParticipantId: caller,
      };
    }
    const deadline = now + answerWindowMs(resource);
    const call: CallRecord = {
      id,
      owner: { appId: ring.appId, tenantId: ring.tenantId },
      state: 'incoming',
      direction: 'incoming',
      createdAt: now,
      lastKeepAliveAt: null,
      deadline,
      establishAt: null,
      endedAt: null,
      resultInfo: null,
      resource,
    };
    await this.store.create({
      id: call.id,
      owner: call.owner,
      state: 'incoming',
      direction: 'incoming',
      createdAt: now,
      deadline,
      establishAt: null,
      resource: call.resource,
    });
    this.emit(call, 'created', cause);
    return call;
  }

  /** The bot answers an incoming call (POST .../answer). From then on it lives like an outgoing call. */
  async answer(owner: CallOwner, id: string, input: unknown, defaultCallbackUri?: string, cause?: RequestCause): Promise<void> {
    const resource = validateAnswer(input, { strictCallbackUri: this.config.strictCallbackUri, defaultCallbackUri });
    const now = this.clock.now();
    const answered = await this.store.answer(id, owner, now, {
      deadline: now + this.config.keepAliveTimeoutMs,
      establishAt: now + this.config.establishDelayMs,
      resource,
    });
    if (!answered.ok) throw refused(answered);
    this.emit(answered.value, 'updated', cause);
  }

  async reject(owner: CallOwner, id: string, input: unknown, cause?: RequestCause): Promise<void> {
    const reason = validateReject(input);
    const ended = await this.store.end(id, owner, this.clock.now(), REJECT_RESULTS[reason], 'incoming');
    if (!ended.ok) throw refused(ended);
    this.emit(ended.value, 'deleted', cause);
  }

  async redirect(owner: CallOwner, id: string, input: unknown, cause?: RequestCause): Promise<void> {
    validateRedirect(input);
    const ended = await this.store.end(id, owner, this.clock.now(), REDIRECTED_RESULT, 'incoming');
    if (!ended.ok) throw refused(ended);
    this.emit(ended.value, 'deleted', cause);
  }

  /** Control API: the other party hangs up. */
  async remoteHangUp(id: string, cause?: RequestCause): Promise<CallRecord> {
    const ended = await this.store.end(id, null, this.clock.now(), REMOTE_HANGUP_RESULT);
    if (!ended.ok) throw refused(ended);
    this.emit(ended.value, 'deleted', cause);
    return ended.value;
  }

  /** Control API: end a live call now, as if its keepAlive deadline had passed. */
  async expireNow(id: string, cause?: RequestCause): Promise<CallRecord> {
    const ended = await this.store.end(id, null, this.clock.now(), KEEPALIVE_TIMEOUT_RESULT);
    if (!ended.ok) throw refused(ended);
    this.emit(ended.value, 'deleted', cause);
    return ended.value;
  }

  /** An operation ends the call (a transfer completed): told to the observers like any other end. */
  async endByOperation(id: string, at: number, result: ResultInfo): Promise<void> {
    const ended = await this.store.end(id, null, at, result);
    if (ended.ok) this.emit(ended.value, 'deleted');
  }

  /**
   * Applies every transition that is due at the clock's now: establishing calls become
   * established, calls past their deadline end with 408/8537, old ended calls are purged.
   * Returns how many calls changed.
   */
  async processDue(): Promise<number> {
    const now = this.clock.now();
    let changed = 0;
    for (;;) {
      const batch = await this.store.establishDue(now, BATCH);
      for (const call of batch) this.emit(call, 'updated');
      changed += batch.length;
      if (batch.length < BATCH) break;
      await yieldToIo();
    }
    const wall = this.config.stepClock ?? performance.now.bind(performance);
    for (;;) {
      const limit = this.expiryStep;
      const started = wall();
      const batch = await this.store.expireDue(now, limit, { keepAlive: KEEPALIVE_TIMEOUT_RESULT, unanswered: UNANSWERED_RESULT });
      for (const call of batch) this.emit(call, 'deleted');
      changed += batch.length;
      if (batch.length < limit) break;
      // Only a full step says what a call costs: a short one is mostly its commit.
      this.expiryStep = nextStepSize(limit, wall() - started, this.config.expiryStepMs ?? EXPIRY_STEP_MS);
      await yieldToIo();
    }
    if (now >= this.purgeAt) {
      // What stays is younger than the retention: its moment comes from nextDueAt, or an end.
      this.purgeAt = Number.POSITIVE_INFINITY;
      while ((await this.store.purgeEnded(now - this.config.endedRetentionMs, BATCH)) === BATCH);
    }
    return changed;
  }

  /** The virtual time at which processDue next has work, if any. */
  async nextDueAt(): Promise<number | undefined> {
    const due = await this.store.nextDue();
    const purgeAt = due.oldestEndedAt === undefined ? undefined : due.oldestEndedAt + this.config.endedRetentionMs;
    // An end told of while the store was read may be earlier than what it saw: keep the lower.
    this.purgeAt = Math.min(purgeAt ?? Number.POSITIVE_INFINITY, this.purgeAt);
    const times = [due.establishAt, due.deadline, purgeAt];
    const defined = times.filter((t): t is number => t !== undefined);
    return defined.length ? Math.min(...defined) : undefined;
  }

  private emit(call: CallRecord | CallSummary, change: ChangeType, cause?: RequestCause): void {
    if (call.endedAt !== null && call.endedAt + this.config.endedRetentionMs < this.purgeAt) {
      this.purgeAt = call.endedAt + this.config.endedRetentionMs;
    }
    for (const o of this.observers) o.onCallChanged(call, change, cause);
  }
}
