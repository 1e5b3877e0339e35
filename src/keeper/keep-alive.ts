import { EventEmitter, setMaxListeners } from 'node:events';
import type { Agent } from 'undici';
import { type Clock, ScaledClock, type Timer } from '../clock/clock.js';
import { GRAPH_DEFAULT_SCOPE } from './client-credentials.js';
import { fetchSend, type HttpResponse, type HttpSend, ownAgent, undiciSend } from './http-send.js';
import { IndexedHeap } from './indexed-heap.js';
import type { EndedEvent, KeepAliveEvents } from './keep-alive-events.js';
import { type KeepAliveOptions, type ResolvedOptions, resolveOptions } from './keep-alive-options.js';
import { backoffDelay, nextAttemptAt, parseRetryAfter } from './retry-policy.js';
import { SendRate } from './send-rate.js';
import { SendSlots } from './send-slots.js';
import { TokenSource } from './token-source.js';
import type { TrackedCall, TrackOptions } from './tracked-call.js';

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
  /** Calls that ended (404) so far. */
  ended: number;
  /** Time of the latest successful keepAlive, if any. */
  lastSuccessAt: number | undefined;
  /** When the next request is due, if any call is tracked. */
  nextSendAt: number | undefined;
  /** A 429's Retry-After holds back everything but urgent calls until then. */
  throttledUntil: number | undefined;
}

/** Floor of the automatic rate limit, requests per second: a handful of calls must not crawl. */
const MIN_AUTO_RATE = 2;

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
  private readonly tokens: TokenSource;
  private readonly send: HttpSend;
  private readonly agent: Agent | undefined;
  private readonly slots: SendSlots;
  private readonly rate: SendRate;
  private readonly calls = new Map<string, TrackedCall>();
  private readonly waiting = new IndexedHeap<TrackedCall>((c) => c.dueAt);
  private readonly ready = new IndexedHeap<TrackedCall>((c) => c.deadline);
  private readonly aborter = new AbortController();
  private timer: Timer | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private pumpQueued = false;
  private inFlight = 0;
  private hooksRunning = 0;
  private holdUntil = Number.NEGATIVE_INFINITY;
  private idleWaiters: (() => void)[] = [];
  private closed: Promise<void> | undefined;
  private counts = { sent: 0, failures: 0, failing: 0, ended: 0, lastSuccessAt: undefined as number | undefined };

  constructor(options: KeepAliveOptions) {
    super();
    this.o = resolveOptions(options);
    this.clock = options.clock ?? new ScaledClock();
    if (options.getToken) this.tokens = new TokenSource(options.getToken, this.clock);
    else if (options.credential) {
      this.tokens = TokenSource.fromCredential(options.credential, options.scopes ?? [GRAPH_DEFAULT_SCOPE], this.clock);
    } else throw new TypeError('KeepAlive: pass getToken or credential');
    if (options.fetch) this.send = fetchSend(options.fetch, this.o.requestTimeoutMs);
    else {
      this.agent = options.dispatcher ? undefined : ownAgent(this.o.maxConcurrency);
      this.send = undiciSend(options.dispatcher ?? (this.agent as Agent), this.o.requestTimeoutMs);
    }
    this.slots = new SendSlots(this.o.interval);
    this.rate = new SendRate(
      () => this.o.maxRate ?? Math.max(MIN_AUTO_RATE, (2 * this.calls.size * 1000) / this.o.interval),
      this.o.tickMs,
    );
    // Every in-flight request listens to the one abort signal.
    setMaxListeners(this.o.maxConcurrency * 2 + 16, this.aborter.signal);
  }

  /** Number of calls being kept alive. */
  get size(): number {
    return this.calls.size;
  }

  /** Whether `callId` is being kept alive. */
  has(callId: string): boolean {
    return this.calls.has(callId);
  }

  /**
   * Starts keeping `callId` alive. Its first keepAlive goes out at its own slot within the next
   * interval (sooner if `lastKeepAliveAt` says time is short). Tracking a call again only
   * replaces its `onEnded` hook.
   */
  track(callId: string, options: TrackOptions = {}): void {
    if (this.closed) throw new Error('KeepAlive: track() after close()');
    if (typeof callId !== 'string' || callId === '') throw new TypeError('KeepAlive: callId must be a non-empty string');
    const existing = this.calls.get(callId);
    if (existing) {
      if (options.onEnded) existing.onEnded = options.onEnded;
      return;
    }
    const now = this.clock.now();
    const since = options.lastKeepAliveAt ?? now;
    const phase = this.slots.nextPhase();
    const call: TrackedCall = {
      id: callId,
      phase,
      onEnded: options.onEnded,
      dueAt: this.slots.firstSend(phase, now, since),
      lastSuccessAt: since,
      deadline: since + this.o.timeout,
      failures: 0,
      atRiskReported: false,
      missedReported: false,
      gone: false,
      heapIndex: -1,
    };
    this.calls.set(callId, call);
    this.waiting.push(call);
    if (call.dueAt <= now) this.queuePump();
    else if (call.dueAt < this.timerAt) this.armAt(call.dueAt);
  }

  /** Stops keeping `callId` alive; an answer still on its way is ignored. Returns whether it was tracked. */
  untrack(callId: string): boolean {
    const call = this.calls.get(callId);
    if (!call) return false;
    this.forget(call);
    return true;
  }

  /** Counters and times for status displays. */
  stats(): KeepAliveStats {
    const next = this.ready.size > 0 ? this.clock.now() : this.waiting.peek()?.dueAt;
    return {
      tracked: this.calls.size,
      inFlight: this.inFlight,
      sent: this.counts.sent,
      failures: this.counts.failures,
      failing: this.counts.failing,
      ended: this.counts.ended,
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

  /** Stops: no more requests, in-flight ones are aborted, tracked calls are dropped (no events). */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.timer?.cancel();
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.aborter.abort();
      for (const call of this.calls.values()) call.gone = true;
      this.calls.clear();
      this.waiting.clear();
      this.ready.clear();
      while (!this.isIdle()) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      this.releaseIdle();
      await this.agent?.close();
    })();
    return this.closed;
  }

  private isIdle(): boolean {
    return this.inFlight === 0 && this.hooksRunning === 0 && !this.pumpQueued;
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
    return now < this.holdUntil && c.deadline - this.o.retry.safetyMarginMs > this.holdUntil;
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
    this.attempt(call, sentAt)
      .catch((err: unknown) => {
        // Only a bug in an event listener gets here; keep the keeper running.
        queueMicrotask(() => {
          throw err;
        });
      })
      .finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
  }

  private async attempt(call: TrackedCall, sentAt: number): Promise<void> {
    let res: HttpResponse;
    try {
      res = await this.post(call);
    } catch (err) {
      if (this.closed || call.gone) return;
      this.failed(call, sentAt, undefined, err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (this.closed || call.gone) return;
    if (res.status >= 200 && res.status < 300) this.succeeded(call, sentAt);
    else if (res.status === 404) this.ended(call, res);
    else this.failed(call, sentAt, res, undefined);
  }

  /** One keepAlive; on 401 the token is refreshed and the request repeated once. */
  private async post(call: TrackedCall): Promise<HttpResponse> {
    const url = `${this.o.callsUrl}/${encodeURIComponent(call.id)}/keepAlive`;
    let token = await this.tokens.get();
    const once = (t: string) => this.send({ method: 'POST', url, headers: { authorization: `Bearer ${t}` }, signal: this.aborter.signal });
    const res = await once(token);
    if (res.status !== 401) return res;
    this.tokens.invalidate(token);
    token = await this.tokens.get();
    return once(token);
  }

  private succeeded(call: TrackedCall, sentAt: number): void {
    const now = this.clock.now();
    const attempts = call.failures + 1;
    if (call.failures > 0) this.counts.failing -= 1;
    call.failures = 0;
    call.atRiskReported = false;
    call.missedReported = false;
    call.lastSuccessAt = sentAt;
    call.deadline = sentAt + this.o.timeout;
    // Back to the call's own slot, whatever delayed this send: keeps the spread even.
    call.dueAt = this.slots.slotAfter(call.phase, now);
    this.waiting.push(call);
    this.counts.sent += 1;
    this.counts.lastSuccessAt = Math.max(this.counts.lastSuccessAt ?? sentAt, sentAt);
    this.emit('sent', { callId: call.id, sentAt, at: now, attempts, nextAt: call.dueAt });
  }

  private failed(call: TrackedCall, sentAt: number, res: HttpResponse | undefined, error: Error | undefined): void {
    const now = this.clock.now();
    if (call.failures === 0) this.counts.failing += 1;
    call.failures += 1;
    this.counts.failures += 1;
    const retryAfterMs = res ? parseRetryAfter(res.header('retry-after'), res.header('date'), now) : undefined;
    // Throttling is per app and tenant (FACTS.md §3): a 429 speaks for every call, not just this one.
    if (res?.status === 429 && retryAfterMs !== undefined) this.holdUntil = Math.max(this.holdUntil, now + retryAfterMs);
    const delay = Math.max(backoffDelay(call.failures, this.o.retry, this.o.random), retryAfterMs ?? 0);
    call.dueAt = nextAttemptAt(now, call.deadline, delay, this.o.retry);
    this.waiting.push(call);
    const code = res ? errorCode(res.body) : undefined;
    this.emit('attemptFailed', {
      callId: call.id,
      sentAt,
      at: now,
      ...(res ? { status: res.status } : {}),
      ...(code === undefined ? {} : { code }),
      ...(error ? { error } : {}),
      failures: call.failures,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      retryAt: call.dueAt,
      deadline: call.deadline,
    });
    this.checkStreak(call, now);
  }

  /** atRisk and deadlineMissed, each once per streak: checked when an attempt starts and when it fails. */
  private checkStreak(call: TrackedCall, now: number): void {
    if (call.gone) return;
    const streak = { callId: call.id, at: now, lastSuccessAt: call.lastSuccessAt, deadline: call.deadline, failures: call.failures };
    if (!call.atRiskReported && now - call.lastSuccessAt >= this.o.atRiskAfter) {
      call.atRiskReported = true;
      this.emit('atRisk', streak);
    }
    if (!call.missedReported && now >= call.deadline) {
      call.missedReported = true;
      this.emit('deadlineMissed', streak);
    }
  }

  private ended(call: TrackedCall, res: HttpResponse): void {
    this.forget(call);
    this.counts.ended += 1;
    const code = errorCode(res.body);
    const event: EndedEvent = {
      callId: call.id,
      at: this.clock.now(),
      status: 404,
      ...(code === undefined ? {} : { code }),
      lastSuccessAt: call.lastSuccessAt,
    };
    this.emit('ended', event);
    const hook = call.onEnded;
    if (!hook) return;
    this.hooksRunning += 1;
    void (async () => {
      try {
        await hook(event);
      } catch (error) {
        if (this.listenerCount('hookFailed') > 0) this.emit('hookFailed', { callId: call.id, error });
        else process.emitWarning(`callkeeper: onEnded hook for call ${call.id} failed: ${String(error)}`);
      } finally {
        this.hooksRunning -= 1;
        this.releaseIdle();
      }
    })();
  }

  private forget(call: TrackedCall): void {
    if (this.calls.get(call.id) === call) this.calls.delete(call.id);
    call.gone = true;
    if (!this.waiting.remove(call)) this.ready.remove(call);
    if (call.failures > 0) this.counts.failing -= 1;
    call.failures = 0;
  }
}

/** Graph's `error.code` from an error body, if it is one. */
function errorCode(body: string): string | undefined {
  if (!body) return undefined;
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown } };
    return typeof parsed.error?.code === 'string' ? parsed.error.code : undefined;
  } catch {
    return undefined;
  }
}
