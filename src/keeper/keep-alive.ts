import { randomUUID } from 'node:crypto';
import { EventEmitter, setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Agent } from 'undici';
import { type Clock, ScaledClock, type Timer } from '../clock/clock.js';
import { GRAPH_DEFAULT_SCOPE } from './client-credentials.js';
import { EndBreaker } from './end-breaker.js';
import { CALL_NOT_FOUND_CODE, graphErrorCode, type PermanentKind, permanentStatus, permanentTokenError } from './failure-kinds.js';
import { fetchSend, type HttpResponse, type HttpSend, ownAgent, undiciSend } from './http-send.js';
import { IndexedHeap } from './indexed-heap.js';
import type { EndedEvent, KeepAliveEvents, RequestIds } from './keep-alive-events.js';
import { type CallTarget, callsUrlOf, type KeepAliveOptions, type ResolvedOptions, resolveOptions } from './keep-alive-options.js';
import { type KeeperLogger, SILENT_LOGGER } from './keeper-logger.js';
import { backoffDelay, nextAttemptAt, nextSlowAttemptAt, parseRetryAfter, slowDelay } from './retry-policy.js';
import { SendRate } from './send-rate.js';
import { SendSlots } from './send-slots.js';
import { type HeldCall, SharedKeeping } from './shared/shared-keeping.js';
import { type GetToken, type TokenCredentialLike, TokenSource } from './token-source.js';
import type { CallState, ResolvedTarget, TrackedCall, TrackOptions } from './tracked-call.js';
import { USER_AGENT } from './version.js';

/** A snapshot of the keeper, for status lines and health checks. */
export interface KeepAliveStats {
  /** Calls being kept alive. */
  tracked: number;
  /** Requests on the wire now. */
  inFlight: number;
  /** Successful keepAlives so far. */
  sent: number;
  /** Failed attempts so far (retried). */
  failures: number;
  /** Tracked calls whose last attempt failed. */
  failing: number;
  /** Calls that ended (404 8522) so far. */
  ended: number;
  /** Tracked calls past `atRiskAfter` without a success. */
  atRisk: number;
  /** Tracked calls on the slow schedule after a permanent error. */
  permanent: number;
  /** While the end-storm breaker is open: until when 404s are not taken as ends. */
  breakerOpenUntil: number | undefined;
  /** Shared keeping: leases this replica holds (undefined when not shared). */
  leases?: number;
  /** Time of the latest successful keepAlive, if any. */
  lastSuccessAt: number | undefined;
  /** When the next request is due, if any call is tracked. */
  nextSendAt: number | undefined;
  /** A 429's Retry-After holds back everything but urgent calls until then. */
  throttledUntil: number | undefined;
}

/** Floor of the automatic rate limit, requests per second: a handful of calls must not crawl. */
const MIN_AUTO_RATE = 2;

/** What one attempt came back with. */
interface Answer {
  res: HttpResponse | undefined;
  error: Error | undefined;
  /** The second 401: Graph refused a token obtained just now. */
  refreshed: boolean;
  ids: RequestIds;
  latencyMs: number;
}

/**
 * Keeps Microsoft Graph calls alive: POSTs `/communications/calls/{id}/keepAlive` for every
 * tracked call, every `interval`, spread evenly, retrying failures until the call's deadline,
 * and tells you when a call has ended.
 *
 * One timer drives everything: calls wait in a min-heap by due time, move to a second heap
 * ordered by deadline once due (so when sends must queue, the call closest to being lost goes
 * first), and leave it subject to `maxConcurrency`, `maxRate` and any 429 pause.
 *
 * @example
 * const keeper = new KeepAlive({ baseUrl: 'https://graph.microsoft.com/v1.0', credential });
 * keeper.track(callId, { onEnded: () => cleanUp(callId) });
 */
export class KeepAlive extends EventEmitter<KeepAliveEvents> {
  private readonly o: ResolvedOptions;
  private readonly clock: Clock;
  private readonly defaultTarget: ResolvedTarget | undefined;
  private readonly tenantTargets = new Map<string, ResolvedTarget>();
  private readonly credentialTargets = new WeakMap<object, Map<string, ResolvedTarget>>();
  private readonly log: KeeperLogger;
  private readonly breaker: EndBreaker;
  /** Causes of permanent errors reported since the last success (each is reported once). */
  private readonly reportedCauses = new Set<string>();
  /** This keeper's name: lease holder in `calls()`. */
  readonly replicaId: string;
  private readonly shared: SharedKeeping | undefined;
  /** Shared keeping: onEnded hooks of the calls tracked on this replica (held here or not). */
  private readonly hooks = new Map<string, TrackOptions['onEnded']>();
  private sharedBusy = 0;
  private readonly send: HttpSend;
  private readonly agent: Agent | undefined;
  private readonly slots: SendSlots;
  private readonly rate: SendRate;
  private readonly tracked = new Map<string, TrackedCall>();
  private readonly waiting = new IndexedHeap<TrackedCall>((c) => c.dueAt);
  // By deadline, which is lastSuccessAt plus the one timeout: the same order.
  private readonly ready = new IndexedHeap<TrackedCall>((c) => c.lastSuccessAt);
  private readonly aborter = new AbortController();
  private timer: Timer | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private pumpQueued = false;
  private inFlight = 0;
  private hooksRunning = 0;
  private holdUntil = Number.NEGATIVE_INFINITY;
  private idleWaiters: (() => void)[] = [];
  private closed: Promise<void> | undefined;
  private counts = {
    sent: 0,
    failures: 0,
    failing: 0,
    ended: 0,
    atRisk: 0,
    permanent: 0,
    lastSuccessAt: undefined as number | undefined,
  };

  constructor(private readonly options: KeepAliveOptions) {
    super();
    this.o = resolveOptions(options);
    this.clock = options.clock ?? new ScaledClock();
    this.log = options.logger ?? SILENT_LOGGER;
    this.breaker = new EndBreaker(this.o.endBreaker);
    this.replicaId = options.replicaId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    if (options.getToken || options.credential) this.defaultTarget = this.makeTarget(options.baseUrl, options);
    else if (!options.tenants) throw new TypeError('KeepAlive: pass getToken or credential (or a tenants resolver)');
    if (options.fetch) this.send = fetchSend(options.fetch, this.o.requestTimeoutMs);
    else {
      this.agent = options.dispatcher ? undefined : ownAgent(this.o.maxConcurrency);
      this.send = undiciSend(options.dispatcher ?? (this.agent as Agent), this.o.requestTimeoutMs);
    }
    this.slots = new SendSlots(this.o.interval);
    this.rate = new SendRate(
      () => this.o.maxRate ?? Math.max(MIN_AUTO_RATE, (2 * this.tracked.size * 1000) / this.o.interval),
      this.o.tickMs,
    );
    // Every in-flight request listens to the one abort signal.
    setMaxListeners(this.o.maxConcurrency * 2 + 16, this.aborter.signal);
    if (options.shared) {
      this.shared = new SharedKeeping(options.shared.redis, options.shared, {
        replicaId: this.replicaId,
        now: () => this.clock.now(),
        setTimer: (at, fn) => this.clock.setTimer(at, fn),
        hold: (c) => this.hold(c),
        drop: (id) => {
          const call = this.tracked.get(id);
          if (!call) return Promise.resolve();
          this.forget(call);
          return this.settledOf(call);
        },
        endedElsewhere: (e) => this.endedElsewhere(e),
        sharedError: (e) => {
          this.log.warn({ operation: e.operation, err: e.error }, 'keeper: shared keeping: a Redis operation failed; retrying');
          this.emit('sharedError', e);
        },
        rebalanced: (e) => {
          this.log.info({ ...e }, 'keeper: shared keeping: calls rebalanced');
          this.emit('rebalanced', e);
        },
        busy: (d) => {
          this.sharedBusy += d;
          this.releaseIdle();
        },
      });
      this.shared.start();
    }
  }

  /** Number of calls being kept alive (in shared keeping: by this replica). */
  get size(): number {
    return this.tracked.size;
  }

  /** Whether `callId` is being kept alive (in shared keeping: held by, or tracked on, this replica). */
  has(callId: string): boolean {
    return this.tracked.has(callId) || this.hooks.has(callId);
  }

  /**
   * Starts keeping `callId` alive. Its first keepAlive goes out at its own slot within the next
   * interval (sooner if `lastKeepAliveAt` says time is short). Tracking a call again only
   * replaces its `onEnded` hook.
   */
  track(callId: string, options: TrackOptions = {}): void {
    if (this.closed) throw new Error('KeepAlive: track() after close()');
    if (typeof callId !== 'string' || callId === '') throw new TypeError('KeepAlive: callId must be a non-empty string');
    if (this.shared) {
      this.trackShared(callId, options);
      return;
    }
    const existing = this.tracked.get(callId);
    if (existing) {
      if (options.onEnded) existing.onEnded = options.onEnded;
      return;
    }
    const target = this.targetFor(options);
    const now = this.clock.now();
    const since = options.lastKeepAliveAt ?? now;
    const phase = this.slots.nextPhase();
    const call: TrackedCall = {
      id: callId,
      phase,
      target,
      tenant: options.tenant,
      baseUrl: options.baseUrl,
      onEnded: options.onEnded,
      dueAt: this.slots.firstSend(phase, now, since),
      lastSuccessAt: since,
      failures: 0,
      atRiskReported: false,
      missedReported: false,
      lastError: undefined,
      lastRequestId: undefined,
      lastClientRequestId: undefined,
      gone: false,
      fence: 0,
      bucket: -1,
      trackedBy: undefined,
      heapIndex: -1,
      settled: undefined,
    };
    this.tracked.set(callId, call);
    this.waiting.push(call);
    if (call.dueAt <= now) this.queuePump();
    else if (call.dueAt < this.timerAt) this.armAt(call.dueAt);
  }

  /** Stops keeping `callId` alive; an answer still on its way is ignored. Returns whether it was tracked. */
  untrack(callId: string): boolean {
    if (this.shared) {
      const known = this.has(callId);
      this.hooks.delete(callId);
      this.shared.untrack(callId);
      const held = this.tracked.get(callId);
      if (held) this.forget(held);
      return known;
    }
    const call = this.tracked.get(callId);
    if (!call) return false;
    this.forget(call);
    return true;
  }

  /**
   * Every tracked call with its state: last success, deadline, failed attempts in a row, the
   * latest error and the lease holder. For health pages and for handing calls over.
   */
  async calls(): Promise<CallState[]> {
    const now = this.clock.now();
    if (this.shared) {
      // Every call of the fleet, as stored; the ones held here with this replica's live state.
      const all = await this.shared.calls(this.o.timeout);
      return all.map((c) => {
        const mine = this.tracked.get(c.callId);
        return mine ? { ...this.describe(mine, now), trackedBy: c.trackedBy } : c;
      });
    }
    return [...this.tracked.values()].map((c) => this.describe(c, now));
  }

  private describe(c: TrackedCall, now: number): CallState {
    const state: CallState['state'] =
      c.lastError?.permanent !== undefined && c.failures > 0
        ? 'permanent'
        : c.failures > 0 && now - c.lastSuccessAt >= this.o.atRiskAfter
          ? 'atRisk'
          : c.failures > 0
            ? 'failing'
            : 'ok';
    return {
      callId: c.id,
      state,
      lastSuccessAt: c.lastSuccessAt,
      deadline: this.deadlineOf(c),
      nextAttemptAt: c.dueAt,
      attempts: c.failures,
      leaseHolder: this.replicaId,
      ...(c.tenant === undefined ? {} : { tenant: c.tenant }),
      ...(c.baseUrl === undefined ? {} : { baseUrl: c.baseUrl }),
      ...(c.lastError === undefined ? {} : { lastError: c.lastError }),
    };
  }

  /** Counters and times for status displays. */
  stats(): KeepAliveStats {
    const next = this.ready.size > 0 ? this.clock.now() : this.waiting.peek()?.dueAt;
    return {
      tracked: this.tracked.size,
      inFlight: this.inFlight,
      sent: this.counts.sent,
      failures: this.counts.failures,
      failing: this.counts.failing,
      ended: this.counts.ended,
      atRisk: this.counts.atRisk,
      permanent: this.counts.permanent,
      breakerOpenUntil: this.breaker.isOpen(this.clock.now()) ? this.breaker.until : undefined,
      ...(this.shared ? { leases: this.shared.leases } : {}),
      lastSuccessAt: this.counts.lastSuccessAt,
      nextSendAt: next,
      throttledUntil: this.holdUntil > this.clock.now() ? this.holdUntil : undefined,
    };
  }

  /**
   * Settles once nothing is in flight, no `onEnded` hook is running and nothing is due before
   * the clock moves on. With a ManualClock: `clock.advance(step); await keeper.whenIdle();`.
   */
  whenIdle(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.pump();
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops: no more requests, in-flight ones are aborted, tracked calls are dropped (no events).
   * In shared keeping the calls are handed to the other replicas at once.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.timer?.cancel();
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      if (this.shared) {
        // A graceful hand-over: let the requests on the wire finish and their successes be
        // stored, then give the leases back, so the next holder knows each call's last keepAlive.
        while (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
        await this.shared.close();
      }
      this.aborter.abort();
      for (const call of this.tracked.values()) call.gone = true;
      this.tracked.clear();
      this.waiting.clear();
      this.ready.clear();
      while (!this.isIdle()) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      this.releaseIdle();
      await this.agent?.close();
    })();
    return this.closed;
  }

  private isIdle(): boolean {
    return this.inFlight === 0 && this.hooksRunning === 0 && !this.pumpQueued && this.sharedBusy === 0;
  }

  /** When Graph ends the call at the latest without another success. */
  private deadlineOf(c: TrackedCall): number {
    return c.lastSuccessAt + this.o.timeout;
  }

  /** Settles when the call's request on the wire (if any) has been answered and handled. */
  private settledOf(call: TrackedCall): Promise<void> {
    return call.settled ?? Promise.resolve();
  }

  private releaseIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private queuePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /** Starts every request that may start now, then sets the timer for the next moment one may. */
  private pump(): void {
    if (this.closed) {
      this.releaseIdle();
      return;
    }
    const now = this.clock.now();
    for (let c = this.waiting.peek(); c && c.dueAt <= now; c = this.waiting.peek()) {
      this.waiting.pop();
      this.ready.push(c);
    }
    while (this.inFlight < this.o.maxConcurrency) {
      const c = this.ready.peek();
      if (!c || this.heldBack(c, now) || this.rate.nextAt(now) > now) break;
      this.ready.pop();
      this.rate.take(now);
      this.start(c, now);
    }
    this.arm(now);
    this.releaseIdle();
  }

  /**
   * During a 429 pause only calls that cannot wait for its end may go. The ready heap is
   * ordered by deadline, so if its top can wait, everyone can.
   */
  private heldBack(c: TrackedCall, now: number): boolean {
    return now < this.holdUntil && this.deadlineOf(c) - this.o.retry.safetyMarginMs > this.holdUntil;
  }

  private arm(now: number): void {
    let at = this.waiting.peek()?.dueAt ?? Number.POSITIVE_INFINITY;
    const top = this.ready.peek();
    if (top && this.inFlight < this.o.maxConcurrency) {
      let readyAt = this.rate.nextAt(now);
      if (this.heldBack(top, now)) readyAt = Math.max(readyAt, this.holdUntil);
      at = Math.min(at, readyAt);
    }
    this.armAt(at);
  }

  private armAt(wanted: number): void {
    // Wake on tick boundaries only: sends that fall due within one tick go out together,
    // one wake-up for many requests instead of one each (that is most of the CPU at 100k calls).
    const tick = this.o.tickMs;
    const at = Number.isFinite(wanted) ? Math.ceil(wanted / tick) * tick : wanted;
    if (at === this.timerAt) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = at;
    if (!Number.isFinite(at)) return;
    this.timer = this.clock.setTimer(at, () => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.pump();
    });
  }

  private start(call: TrackedCall, sentAt: number): void {
    this.inFlight += 1;
    this.checkStreak(call, sentAt);
    const settled = this.attempt(call, sentAt)
      .catch((err: unknown) => {
        // Only a bug in an event listener gets here; keep the keeper running.
        queueMicrotask(() => {
          throw err;
        });
      })
      .finally(() => {
        this.inFlight -= 1;
        if (call.settled === settled) call.settled = undefined;
        this.pump();
      });
    call.settled = settled;
  }

  private async attempt(call: TrackedCall, sentAt: number): Promise<void> {
    // Fenced: a replica whose lease on the call is gone (or about to lapse) does not send.
    if (this.shared && !this.shared.maySend(call.bucket, call.fence)) {
      if (this.shared.holds(call.bucket, call.fence)) {
        // Still ours, but the lease has not been renewed for a while (Redis slow or away, the
        // process stalled): wait for a sync to renew it (then send) or to say it is lost (then
        // drop). Dropping it here would lose it for good if the renewal then succeeds.
        call.dueAt = this.clock.now() + this.shared.recheckMs;
        this.waiting.push(call);
        return;
      }
      this.forget(call);
      return;
    }
    const answer = await this.post(call);
    if (this.closed || call.gone) {
      // Dropped while on the wire (handed over, closing): a success still counts for the next holder.
      const status = answer.res?.status ?? 0;
      if (this.shared && status >= 200 && status < 300) this.shared.recordSent(call.id, call.bucket, call.fence, sentAt);
      return;
    }
    call.lastRequestId = answer.ids.requestId;
    call.lastClientRequestId = answer.ids.clientRequestId;
    const { res } = answer;
    if (res && res.status >= 200 && res.status < 300) {
      this.succeeded(call, sentAt, answer);
      return;
    }
    const code = res ? graphErrorCode(res.body) : undefined;
    if (res?.status === 404 && code === CALL_NOT_FOUND_CODE) {
      const now = this.clock.now();
      this.closeBreakerIfDue(now);
      const verdict = this.breaker.onNotFound(now, this.tracked.size);
      if (verdict.end) {
        this.ended(call, answer, code);
        return;
      }
      if (verdict.opened) {
        const until = this.breaker.until ?? now;
        const event = { at: now, ended: this.breaker.recentEnds, tracked: this.tracked.size, until, callId: call.id, ...answer.ids };
        this.log.error({ ...event }, 'keeper: too many calls ended within a minute; 404s are not taken as ends for now');
        this.emit('circuitOpen', event);
      }
      this.failed(call, sentAt, answer, code, 'breaker');
      return;
    }
    const permanent: PermanentKind | undefined = res ? permanentStatus(res.status, answer.refreshed) : permanentTokenError(answer.error);
    this.failed(call, sentAt, answer, code, permanent);
  }

  /**
   * One keepAlive; on 401 the token is refreshed and the request repeated once. Never rejects:
   * a network or token error comes back as `error`.
   */
  private async post(call: TrackedCall): Promise<Answer> {
    const url = `${call.target.callsUrl}/${encodeURIComponent(call.id)}/keepAlive`;
    const started = performance.now();
    let clientRequestId = randomUUID();
    const done = (res: HttpResponse | undefined, error: Error | undefined, refreshed: boolean): Answer => {
      const requestId = res?.header('request-id');
      return {
        res,
        error,
        refreshed,
        ids: { ...(requestId ? { requestId } : {}), clientRequestId },
        latencyMs: performance.now() - started,
      };
    };
    const once = (t: string) =>
      this.send({
        method: 'POST',
        url,
        headers: { authorization: `Bearer ${t}`, 'client-request-id': clientRequestId, 'user-agent': USER_AGENT },
        signal: this.aborter.signal,
      });
    try {
      let token = await call.target.tokens.get();
      const res = await once(token);
      if (res.status !== 401) return done(res, undefined, false);
      call.target.tokens.invalidate(token);
      token = await call.target.tokens.get();
      clientRequestId = randomUUID();
      return done(await once(token), undefined, true);
    } catch (err) {
      return done(undefined, err instanceof Error ? err : new Error(String(err)), false);
    }
  }

  private succeeded(call: TrackedCall, sentAt: number, answer: Answer): void {
    const now = this.clock.now();
    const attempts = call.failures + 1;
    this.clearStreak(call);
    call.lastError = undefined;
    call.lastSuccessAt = sentAt;
    // Back to the call's own slot, whatever delayed this send: keeps the spread even.
    call.dueAt = this.slots.slotAfter(call.phase, now);
    this.waiting.push(call);
    this.counts.sent += 1;
    this.counts.lastSuccessAt = Math.max(this.counts.lastSuccessAt ?? sentAt, sentAt);
    this.shared?.recordSent(call.id, call.bucket, call.fence, sentAt);
    // A success says the configuration works again: a new permanent error is news.
    this.reportedCauses.clear();
    this.closeBreakerIfDue(now);
    this.emit('sent', { callId: call.id, sentAt, at: now, attempts, nextAt: call.dueAt, latencyMs: answer.latencyMs, ...answer.ids });
  }

  /** Resets a call's failure streak and the counters that follow it. */
  private clearStreak(call: TrackedCall): void {
    if (call.failures > 0) this.counts.failing -= 1;
    if (call.atRiskReported) this.counts.atRisk -= 1;
    if (call.lastError?.permanent !== undefined && call.failures > 0) this.counts.permanent -= 1;
    call.failures = 0;
    call.atRiskReported = false;
    call.missedReported = false;
  }

  private failed(
    call: TrackedCall,
    sentAt: number,
    answer: Answer,
    code: string | undefined,
    kind: PermanentKind | 'breaker' | undefined,
  ): void {
    const now = this.clock.now();
    const { res, error } = answer;
    const wasPermanent = call.failures > 0 && call.lastError?.permanent !== undefined;
    if (call.failures === 0) this.counts.failing += 1;
    call.failures += 1;
    this.counts.failures += 1;
    const permanent = kind === 'breaker' ? undefined : kind;
    if (permanent !== undefined && !wasPermanent) this.counts.permanent += 1;
    if (permanent === undefined && wasPermanent) this.counts.permanent -= 1;
    const retryAfterMs = res ? parseRetryAfter(res.header('retry-after'), res.header('date'), now) : undefined;
    // Throttling is per app and tenant (https://learn.microsoft.com/graph/throttling-limits): a 429 speaks for every call, not just this one.
    if (res?.status === 429 && retryAfterMs !== undefined) this.holdUntil = Math.max(this.holdUntil, now + retryAfterMs);
    if (kind !== undefined) {
      call.dueAt = nextSlowAttemptAt(
        now,
        this.deadlineOf(call),
        Math.max(slowDelay(this.o.retry, this.o.random), retryAfterMs ?? 0),
        this.o.retry,
      );
    } else {
      const delay = Math.max(backoffDelay(call.failures, this.o.retry, this.o.random), retryAfterMs ?? 0);
      call.dueAt = nextAttemptAt(now, this.deadlineOf(call), delay, this.o.retry);
    }
    this.waiting.push(call);
    const message = error?.message ?? (res ? graphErrorMessage(res.body) : undefined);
    call.lastError = {
      at: now,
      ...(res ? { status: res.status } : {}),
      ...(code === undefined ? {} : { code }),
      ...(message === undefined ? {} : { message }),
      ...(permanent === undefined ? {} : { permanent }),
      ...answer.ids,
    };
    const event = {
      callId: call.id,
      sentAt,
      at: now,
      ...(res ? { status: res.status } : {}),
      ...(code === undefined ? {} : { code }),
      ...(error ? { error } : {}),
      failures: call.failures,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      retryAt: call.dueAt,
      deadline: this.deadlineOf(call),
      ...(permanent === undefined ? {} : { permanent }),
      ...(kind === 'breaker' ? { breakerOpen: true as const } : {}),
      latencyMs: answer.latencyMs,
      ...answer.ids,
    };
    this.emit('attemptFailed', event);
    if (permanent !== undefined) this.reportPermanent(call, permanent, answer, code, message);
    else this.log.debug({ callId: call.id, status: res?.status, code, err: error, ...answer.ids }, 'keeper: keepAlive failed; retrying');
    this.checkStreak(call, now);
  }

  /** Once per cause until a keepAlive succeeds again: thousands of calls failing alike are one report. */
  private reportPermanent(call: TrackedCall, kind: PermanentKind, answer: Answer, code: string | undefined, message: string | undefined) {
    const status = answer.res?.status;
    const cause = `${kind}|${status ?? ''}|${code ?? ''}`;
    if (this.reportedCauses.has(cause)) return;
    this.reportedCauses.add(cause);
    const event = {
      kind,
      callId: call.id,
      at: this.clock.now(),
      ...(status === undefined ? {} : { status }),
      ...(code === undefined ? {} : { code }),
      ...(message === undefined ? {} : { message }),
      retryAt: call.dueAt,
      ...answer.ids,
    };
    this.log.error(
      { ...event },
      `keeper: permanent error (${kind}); calls retry every ${Math.round(this.o.retry.permanentDelayMs / 1000)} s`,
    );
    this.emit('permanentError', event);
  }

  private closeBreakerIfDue(now: number): void {
    if (!this.breaker.closeIfDue(now)) return;
    this.log.warn({ at: now }, 'keeper: end-storm breaker closed; 404 8522 ends calls again');
    this.emit('circuitClosed', { at: now });
  }

  /** atRisk and deadlineMissed, each once per streak: checked when an attempt starts and when it fails. */
  private checkStreak(call: TrackedCall, now: number): void {
    if (call.gone) return;
    const streak = {
      callId: call.id,
      at: now,
      lastSuccessAt: call.lastSuccessAt,
      deadline: this.deadlineOf(call),
      failures: call.failures,
      ...(call.lastRequestId === undefined ? {} : { requestId: call.lastRequestId }),
      ...(call.lastClientRequestId === undefined ? {} : { clientRequestId: call.lastClientRequestId }),
    };
    if (!call.atRiskReported && now - call.lastSuccessAt >= this.o.atRiskAfter) {
      call.atRiskReported = true;
      this.counts.atRisk += 1;
      this.log.warn({ ...streak }, 'keeper: call at risk, no successful keepAlive for a while');
      this.emit('atRisk', streak);
    }
    if (!call.missedReported && now >= this.deadlineOf(call)) {
      call.missedReported = true;
      this.log.error({ ...streak }, 'keeper: keepAlive deadline missed; Graph has most likely ended the call');
      this.emit('deadlineMissed', streak);
    }
  }

  private ended(call: TrackedCall, answer: Answer, code: string): void {
    this.forget(call);
    const event: EndedEvent = {
      callId: call.id,
      at: this.clock.now(),
      status: 404,
      code,
      lastSuccessAt: call.lastSuccessAt,
      ...answer.ids,
      ...(this.shared ? { endedBy: this.replicaId } : {}),
    };
    if (!this.shared) {
      this.announceEnd(event, call.onEnded);
      return;
    }
    // Cluster-wide: ended only if this replica still held the call; the others hear of it.
    this.hooksRunning += 1;
    void this.shared
      .end(call.id, call.bucket, call.fence, event)
      .then((meta) => {
        if (meta) this.endedElsewhere(event);
      })
      .finally(() => {
        this.hooksRunning -= 1;
        this.releaseIdle();
      });
  }

  /** `ended` on this replica, and the call's onEnded if it was tracked here. */
  private endedElsewhere(event: EndedEvent): void {
    if (this.closed) return;
    const held = this.tracked.get(event.callId);
    if (held) this.forget(held);
    const hook = this.hooks.get(event.callId);
    this.hooks.delete(event.callId);
    this.announceEnd(event, hook);
  }

  private announceEnd(event: EndedEvent, hook: TrackOptions['onEnded']): void {
    this.counts.ended += 1;
    this.log.info({ ...event }, 'keeper: call ended');
    this.emit('ended', event);
    this.runHook(event.callId, hook, event);
  }

  /** Shared keeping: registers the call in Redis; whoever holds its bucket starts sending. */
  private trackShared(callId: string, options: TrackOptions): void {
    const shared = this.shared as SharedKeeping;
    if (options.getToken || options.credential) {
      throw new TypeError(
        'KeepAlive: with shared keeping a call cannot carry a credential (other replicas cannot use it): track with { tenant }',
      );
    }
    this.targetFor(options); // refuses a tenant without a resolver here, where the caller sees it
    if (options.onEnded) this.hooks.set(callId, options.onEnded);
    else if (!this.hooks.has(callId)) this.hooks.set(callId, undefined);
    const now = this.clock.now();
    shared.track(callId, options.lastKeepAliveAt ?? now, {
      t: this.replicaId,
      ...(options.tenant === undefined ? {} : { tn: options.tenant }),
      ...(options.baseUrl === undefined ? {} : { u: options.baseUrl }),
    });
  }

  /** Shared keeping: this replica now holds the call's lease. Its slot is the fleet-wide one. */
  private hold(h: HeldCall): void {
    if (this.closed) return;
    const existing = this.tracked.get(h.callId);
    if (existing) {
      existing.fence = h.fence;
      return;
    }
    const now = this.clock.now();
    const phase = this.slots.phaseOf(h.phaseIndex);
    const target = this.targetFor({
      ...(h.tenant === undefined ? {} : { tenant: h.tenant }),
      ...(h.baseUrl === undefined ? {} : { baseUrl: h.baseUrl }),
    });
    const call: TrackedCall = {
      id: h.callId,
      phase,
      target,
      tenant: h.tenant,
      baseUrl: h.baseUrl,
      onEnded: undefined,
      dueAt: this.slots.firstSend(phase, now, h.lastSuccessAt),
      lastSuccessAt: h.lastSuccessAt,
      failures: 0,
      atRiskReported: false,
      missedReported: false,
      lastError: undefined,
      lastRequestId: undefined,
      lastClientRequestId: undefined,
      gone: false,
      fence: h.fence,
      bucket: h.bucket,
      trackedBy: h.trackedBy,
      heapIndex: -1,
      settled: undefined,
    };
    this.tracked.set(call.id, call);
    this.waiting.push(call);
    if (call.dueAt <= now) this.queuePump();
    else if (call.dueAt < this.timerAt) this.armAt(call.dueAt);
  }

  private runHook(callId: string, hook: TrackOptions['onEnded'], event: EndedEvent): void {
    if (!hook) return;
    this.hooksRunning += 1;
    void (async () => {
      try {
        await hook(event);
      } catch (error) {
        const ids = {
          ...(event.requestId ? { requestId: event.requestId } : {}),
          ...(event.clientRequestId ? { clientRequestId: event.clientRequestId } : {}),
        };
        this.log.error({ callId, err: error, ...ids }, 'keeper: onEnded hook failed');
        if (this.listenerCount('hookFailed') > 0) this.emit('hookFailed', { callId, error, ...ids });
        else process.emitWarning(`callkeeper: onEnded hook for call ${callId} failed: ${String(error)}`);
      } finally {
        this.hooksRunning -= 1;
        this.releaseIdle();
      }
    })();
  }

  private forget(call: TrackedCall): void {
    if (this.tracked.get(call.id) === call) this.tracked.delete(call.id);
    call.gone = true;
    if (!this.waiting.remove(call)) this.ready.remove(call);
    this.clearStreak(call);
  }

  /** How long a failed token request is answered from memory: the slow schedule when permanent. */
  private readonly tokenHold = (err: unknown): number =>
    permanentTokenError(err) !== undefined ? this.o.retry.permanentDelayMs : this.o.retry.baseDelayMs;

  private makeTarget(baseUrl: string, t: CallTarget): ResolvedTarget {
    const tokens = t.getToken
      ? new TokenSource(t.getToken, this.clock, this.tokenHold)
      : t.credential
        ? TokenSource.fromCredential(t.credential, t.scopes ?? this.options.scopes ?? [GRAPH_DEFAULT_SCOPE], this.clock, this.tokenHold)
        : undefined;
    if (!tokens) throw new TypeError('KeepAlive: a call target needs getToken or credential');
    return { callsUrl: callsUrlOf(baseUrl), tokens };
  }

  /** The target of a call: its own baseUrl/credential, its tenant's, or the keeper's. One TokenSource per credential. */
  private targetFor(o: TrackOptions): ResolvedTarget {
    if (o.tenant !== undefined) {
      let t = this.tenantTargets.get(o.tenant);
      if (!t) {
        if (!this.options.tenants) throw new TypeError("KeepAlive: track({ tenant }) needs the keeper's tenants option");
        const given = this.options.tenants(o.tenant);
        t = this.makeTarget(given.baseUrl ?? this.options.baseUrl, {
          ...given,
          ...(given.getToken || given.credential ? {} : fallbackAuth(this.options)),
        });
        this.tenantTargets.set(o.tenant, t);
      }
      return t;
    }
    const auth: GetToken | TokenCredentialLike | undefined = o.getToken ?? o.credential;
    if (!auth && o.baseUrl === undefined) {
      if (!this.defaultTarget)
        throw new TypeError('KeepAlive: this keeper has no credential of its own: track with { tenant } or a credential');
      return this.defaultTarget;
    }
    const key = auth ?? this.options.getToken ?? this.options.credential;
    if (!key) throw new TypeError('KeepAlive: this keeper has no credential of its own: track with { tenant } or a credential');
    const baseUrl = o.baseUrl ?? this.options.baseUrl;
    let byUrl = this.credentialTargets.get(key);
    if (!byUrl) {
      byUrl = new Map();
      this.credentialTargets.set(key, byUrl);
    }
    let t = byUrl.get(baseUrl);
    if (!t) {
      // A per-call baseUrl with the keeper's credential shares the keeper's token cache.
      t =
        !auth && this.defaultTarget
          ? { callsUrl: callsUrlOf(baseUrl), tokens: this.defaultTarget.tokens }
          : this.makeTarget(
              baseUrl,
              o.getToken
                ? { getToken: o.getToken }
                : { credential: o.credential as TokenCredentialLike, ...(o.scopes ? { scopes: o.scopes } : {}) },
            );
      byUrl.set(baseUrl, t);
    }
    return t;
  }
}

function fallbackAuth(o: KeepAliveOptions): CallTarget {
  if (o.getToken) return { getToken: o.getToken };
  if (o.credential) return { credential: o.credential };
  throw new TypeError('KeepAlive: the tenants resolver gave no credential, and the keeper has none of its own');
}

/** Graph's `error.message`, short, for logs and `calls()`. */
function graphErrorMessage(body: string): string | undefined {
  try {
    const m = (JSON.parse(body) as { error?: { message?: unknown } }).error?.message;
    return typeof m === 'string' ? m.slice(0, 300) : undefined;
  } catch {
    return undefined;
  }
}
