import { performance } from 'node:perf_hooks';
import type { Agent, request } from 'undici';
import type { CallObserver } from '../calls/call-events.js';
import { type Clock, type Timer, wallTime } from '../clock/clock.js';
import type { DeliveryAttempt, DeliveryOutcome, OutboxEntry, OutboxPort } from '../store/outbox-port.js';
import { notificationHeaders } from './notification-headers.js';
import type { NotificationSigner } from './notification-signer.js';
import { renderNotifications } from './render.js';
import { DEFAULT_RETRY, isRetryable, nextAttemptAt, type RetrySchedule } from './retry-schedule.js';

export interface DispatcherOptions {
  /** Requests in flight at once, all hosts together. */
  concurrency: number;
  /** Requests in flight at once to one callback host: a slow bot holds only its own share. */
  perHostConcurrency: number;
  /** Wall-clock limit of one delivery request (connect to last byte). */
  requestTimeoutMs: number;
  retry: RetrySchedule;
  /** How often (wall ms) to look for work other instances queued. */
  pollWallMs: number;
  random: () => number;
  /**
   * Asked before each attempt (fault rules on notifications): wait `latencyMs` (wall clock)
   * first, and/or `drop` the attempt without contacting the bot, recorded as that outcome.
   */
  beforeDelivery?: (e: OutboxEntry) => Promise<DeliveryFault | undefined>;
  /** Told of every attempt once recorded (logs, metrics); must not throw. */
  afterDelivery?: (e: OutboxEntry, attempt: DeliveryAttempt) => void;
  /**
   * On stop, deliveries in flight get this long (wall ms) to finish; then they are aborted and
   * left unrecorded: their lease runs out and the next start delivers them again (at least once).
   * This bounds a shutdown behind a bot that never answers. Default 2000.
   */
  shutdownGraceMs?: number;
}

export interface DeliveryFault {
  latencyMs?: number;
  drop?: { statusCode: number | null; error: string };
}

export const DEFAULT_DISPATCHER: DispatcherOptions = {
  concurrency: 64,
  perHostConcurrency: 8,
  requestTimeoutMs: 10_000,
  retry: DEFAULT_RETRY,
  pollWallMs: 1_000,
  random: Math.random,
};

interface Logger {
  error(obj: unknown, msg: string): void;
  warn?(obj: unknown, msg: string): void;
}

interface HostQueue {
  active: number;
  waiting: OutboxEntry[];
}

/** A host's waiting line is bounded; what does not fit stays leased in the store and comes back. */
const MAX_WAITING_PER_HOST = 1_000;

/**
 * Delivers the outbox: POSTs each notification to its callbackUri, in order per call, at least
 * once, retrying with backoff until the retry window is spent, then dead-lettering it. Runs
 * beside the API: a slow or hanging bot fills only its own host's slots.
 */
export class NotificationDispatcher implements CallObserver {
  private readonly hosts = new Map<string, HostQueue>();
  /** Bot origins whose notifications fail, already warned about (again after one succeeds). */
  private readonly failingOrigins = new Set<string>();
  /** Entries this instance is delivering or holding, by seq. */
  private readonly inFlight = new Map<number, OutboxEntry>();
  private active = 0;
  private timer: Timer | undefined;
  private pumping = false;
  /** A claim for the room finished deliveries left is due in the next turn (kickAfterDelivery). */
  private afterDeliveryKick = false;
  private again = false;
  /** A pump was asked for while one ran, for a reason other than a finished delivery. */
  private againWide = false;
  /** Work running under holdWhile(): no new claims until it is done. */
  private holds = 0;
  private readonly released = new Set<() => void>();
  private stopped = true;
  private readonly settled = new Set<() => void>();
  private closed: Promise<void> | undefined;
  /** The store's overflow counter when last looked at, and when (wall ms). */
  private overflowSeen: number | undefined;
  private overflowCheckedAt = 0;
  /**
   * Its own connection pool, not undici's global one: that one is shared with the process's
   * fetch, which callkeeper must leave as it found it. Made, and undici loaded, at the first
   * delivery: a server that delivers nothing does not pay for loading undici at start.
   */
  private http: Promise<{ agent: Agent; request: typeof request }> | undefined;
  /** Aborted when a stop's grace period is over. */
  private readonly shutdown = new AbortController();

  constructor(
    private readonly store: OutboxPort,
    private readonly clock: Clock,
    private readonly signer: NotificationSigner,
    private readonly log: Logger,
    private readonly options: DispatcherOptions = DEFAULT_DISPATCHER,
  ) {}

  start(): void {
    this.stopped = false;
    this.kick();
  }

  /**
   * Stops claiming and drops what waits (it stays leased in the store); deliveries in flight
   * have `shutdownGraceMs` to finish (their outcome is recorded), then are aborted.
   */
  async stop(): Promise<void> {
    if (this.closed) return this.closed;
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    for (const [host, q] of this.hosts) {
      for (const e of q.waiting) this.inFlight.delete(e.seq);
      q.waiting.length = 0;
      if (q.active === 0) this.hosts.delete(host);
    }
    const grace = setTimeout(() => this.shutdown.abort(), this.options.shutdownGraceMs ?? 2_000);
    this.checkIdle();
    this.closed = this.idle().then(() => {
      clearTimeout(grace);
      return this.http?.then(({ agent }) => agent.destroy());
    });
    return this.closed;
  }

  /** New notifications were queued: deliver them soon. */
  onCallChanged(): void {
    this.kick();
  }

  /** Settles when nothing is in flight, waiting or being claimed (for tests and shutdown). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.settled.add(resolve));
  }

  /**
   * Runs `work` with no new claims meanwhile; deliveries in flight go on. The due-work sweep
   * runs so: ending 100,000 calls and queueing their notifications shares one event loop with
   * delivering them, and would take several times as long if both ran at once. When the last
   * hold ends, what became due is claimed.
   */
  async holdWhile<T>(work: () => Promise<T>): Promise<T> {
    this.holds++;
    try {
      return await work();
    } finally {
      if (--this.holds === 0) {
        for (const resolve of this.released) resolve();
        this.released.clear();
        this.kick();
      }
    }
  }

  /** Delivers everything due now, and what becomes due as those finish; for tests and the control API. */
  async flush(): Promise<void> {
    for (let round = 0; round < 1000; round++) {
      if (this.holds > 0) await new Promise<void>((resolve) => this.released.add(resolve));
      await this.pump();
      await this.idle();
      const next = await this.store.nextDeliveryAt();
      if (next === undefined || next > this.clock.now()) return;
    }
  }

  /**
   * Claims and starts whatever is due now, as much as free delivery slots can take (see
   * room()); resolves when that claim is done (not the deliveries). `afterDelivery`: a delivery
   * just finished, so only its hosts' lines have room.
   */
  async pump(afterDelivery = false): Promise<void> {
    if (this.pumping) {
      this.again = true;
      if (!afterDelivery) this.againWide = true;
      return;
    }
    this.pumping = true;
    let wide = !afterDelivery;
    try {
      do {
        this.again = false;
        if (this.againWide) wide = true;
        this.againWide = false;
        if (this.stopped || this.holds > 0) break;
        const limit = this.room(wide);
        if (limit <= 0) break;
        const now = this.clock.now();
        const lease = now + this.leaseMs();
        const entries = await this.store.claimDeliveries(now, limit, lease);
        let useful = 0;
        for (const e of entries) if (this.enqueue(e)) useful++;
        // More may be due: claim again while every entry found a slot in its host's line.
        if (entries.length === limit && useful === limit) this.again = true;
      } while (this.again);
      await this.armTimer();
    } catch (err) {
      this.log.error({ err }, 'claiming notifications failed');
    } finally {
      this.pumping = false;
      this.checkIdle();
    }
  }

  private kick(afterDelivery = false): void {
    if (!this.stopped) void this.pump(afterDelivery);
  }

  /**
   * Deliveries that finish in one turn of the event loop (their finishes commit together) share
   * one claim in the next, not one claim transaction each: at a delivery a millisecond that was
   * most of the dispatcher's store work, all of it on the event loop the expiry sweep needs.
   */
  private kickAfterDelivery(): void {
    if (this.afterDeliveryKick || this.stopped) return;
    this.afterDeliveryKick = true;
    setImmediate(() => {
      this.afterDeliveryKick = false;
      this.kick(true);
      this.checkIdle();
    });
  }

  /** What one host's line takes: its delivery slots and as many ready behind them. */
  private get lineLength(): number {
    return this.options.perHostConcurrency * 2;
  }

  /**
   * How many entries to claim. A claim holds an entry (a lease, a store write) whether or not
   * it can start, so claim only what free slots can take. After a delivery finished, its
   * next work is most likely for the hosts already being delivered to: the room left in their
   * lines. Otherwise (new work queued, the poll, a start) the free slots of the whole
   * dispatcher, counting each host's line only up to lineLength, so that one host that cannot
   * keep up (a hanging bot) never holds the slots the others need; it gets what a wide claim
   * brings it, at most once per kick.
   */
  private room(wide: boolean): number {
    let held = 0;
    let room = 0;
    for (const q of this.hosts.values()) {
      const n = q.active + q.waiting.length;
      held += Math.min(n, this.lineLength);
      room += Math.max(0, this.lineLength - n);
    }
    const free = this.options.concurrency - held;
    return wide || this.hosts.size === 0 ? free : Math.min(free, room);
  }

  /**
   * A lease outlives the longest request (in virtual time), so no live delivery is claimed
   * twice; and no longer, since a crashed instance's claims wait that long to come back.
   */
  private leaseMs(): number {
    const wall = this.options.requestTimeoutMs + 1_000;
    return this.clock.scale > 0 ? wall * this.clock.scale : wall;
  }

  /** Takes a claimed entry into its host's line; true if it found room there (see room()). */
  private enqueue(e: OutboxEntry): boolean {
    const held = this.inFlight.get(e.seq);
    if (held) {
      // Claimed again while still ours (its lease ran out in virtual time, e.g. a clock advance
      // during the request): the newer token is the one to finish with.
      held.lease = Math.max(held.lease, e.lease);
      return false;
    }
    let host: string;
    try {
      host = new URL(e.callbackUri).host;
    } catch {
      host = '';
    }
    let q = this.hosts.get(host);
    if (!q) {
      q = { active: 0, waiting: [] };
      this.hosts.set(host, q);
    }
    if (q.waiting.length >= MAX_WAITING_PER_HOST) return false;
    this.inFlight.set(e.seq, e);
    q.waiting.push(e);
    this.drain(host, q);
    return q.active + q.waiting.length <= this.lineLength;
  }

  private drain(host: string, q: HostQueue): void {
    while (!this.stopped && q.active < this.options.perHostConcurrency && this.active < this.options.concurrency && q.waiting.length) {
      const e = q.waiting.shift() as OutboxEntry;
      q.active++;
      this.active++;
      void this.deliver(e).finally(() => {
        q.active--;
        this.active--;
        this.inFlight.delete(e.seq);
        if (q.active === 0 && q.waiting.length === 0) this.hosts.delete(host);
        else this.drain(host, q);
        // The call's next notification, if any, is now at the head of its line.
        this.kickAfterDelivery();
        this.checkIdle();
      });
    }
  }

  /** A wall-clock wait that a stop's grace period cuts short (it then throws). */
  private wait(ms: number): Promise<void> {
    const signal = this.shutdown.signal;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(t);
        reject(new Error('stopped'));
      };
      const t = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async deliver(e: OutboxEntry): Promise<void> {
    const { agent, request } = await this.client();
    const at = this.clock.now();
    const started = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const fault = await this.options.beforeDelivery?.(e);
      if (fault?.latencyMs) await this.wait(fault.latencyMs);
      if (fault?.drop) throw new DroppedByFault(fault.drop.statusCode, fault.drop.error);
      const token = await this.signer.tokenFor(e.owner.appId, e.owner.tenantId);
      const body = JSON.stringify({
        '@odata.type': '#microsoft.graph.commsNotifications',
        value: renderNotifications(e.fact).map((n) => ({
          '@odata.type': '#microsoft.graph.commsNotification',
          changeType: n.changeType,
          resource: `/app/calls/${e.callId}${n.resourcePath ?? ''}`,
          resourceUrl: `/communications/calls/${e.callId}${n.resourcePath ?? ''}`,
          resourceData: n.resourceList ?? n.resourceData,
          callbackUri: e.callbackUri,
        })),
      });
      const res = await request(e.callbackUri, {
        method: 'POST',
        headers: notificationHeaders(e, token),
        body,
        headersTimeout: this.options.requestTimeoutMs,
        bodyTimeout: this.options.requestTimeoutMs,
        signal: anySignal(AbortSignal.timeout(this.options.requestTimeoutMs), this.shutdown.signal),
        dispatcher: agent,
      });
      statusCode = res.statusCode;
      await res.body.dump();
      if (statusCode < 200 || statusCode >= 300) error = `HTTP ${statusCode}`;
    } catch (err) {
      // Cut off by shutdown: not the bot's fault, and not an attempt; the lease brings it back.
      if (this.shutdown.signal.aborted) return;
      if (err instanceof DroppedByFault) statusCode = err.statusCode;
      error = describe(err);
    }
    this.noteReachability(e.callbackUri, error, reachability(statusCode));
    const attempts = e.attempts + 1;
    let outcome: DeliveryOutcome;
    if (error === null) outcome = { status: 'delivered' };
    else {
      const next = isRetryable(statusCode)
        ? nextAttemptAt(this.options.retry, attempts, this.clock.now(), e.createdAt, this.options.random)
        : undefined;
      outcome = next === undefined ? { status: 'dead' } : { status: 'pending', nextAttemptAt: next };
    }
    const attempt: DeliveryAttempt = {
      attempt: attempts,
      at,
      statusCode,
      latencyMs: Math.round((performance.now() - started) * 100) / 100,
      error,
      outcome: outcome.status === 'delivered' ? 'delivered' : outcome.status === 'dead' ? 'dead' : 'retry',
    };
    try {
      // A stale lease (this claim ran out and another took the entry over, or the outbox bound
      // dead-lettered it) changes nothing: the newer claim's outcome stands.
      await this.store.finishDelivery(e.seq, e.lease, attempt, outcome);
      this.options.afterDelivery?.(e, attempt);
    } catch (err) {
      this.log.error({ err }, 'recording a delivery failed; it will be retried when its lease ends');
    }
  }

  private client(): Promise<{ agent: Agent; request: typeof request }> {
    this.http ??= import('undici').then(({ Agent, request }) => ({
      agent: new Agent({ connections: this.options.perHostConcurrency, connectTimeout: this.options.requestTimeoutMs }),
      request,
    }));
    return this.http;
  }

  /**
   * A bot that cannot be reached (a typo in callbackUri, a bot not started, a public host from
   * a snippet) would otherwise be retried for an hour in silence: say so once per origin, at
   * warn, and again only after a delivery to it has succeeded in between.
   */
  private noteReachability(callbackUri: string, error: string | null, status: string): void {
    let origin: string;
    try {
      origin = new URL(callbackUri).origin;
    } catch {
      origin = callbackUri;
    }
    if (error === null) {
      this.failingOrigins.delete(origin);
      return;
    }
    if (this.failingOrigins.has(origin)) return;
    this.failingOrigins.add(origin);
    this.log.warn?.(
      { callbackUri, error, status },
      `notifications to ${origin} fail (${error}); retrying with backoff, then dead-lettered (GET /_callkeeper/notifications?status=pending shows each attempt)`,
    );
  }

  /**
   * Says so in the log when the outbox bounds dead-lettered notifications (a bot that never
   * answers); the count itself is the store's (outboxStats), for metrics. At most once a second.
   */
  private async checkOverflow(): Promise<void> {
    const wall = wallTime();
    if (wall - this.overflowCheckedAt < 1_000) return;
    this.overflowCheckedAt = wall;
    const { overflowed, pending } = await this.store.outboxStats();
    if (this.overflowSeen !== undefined && overflowed > this.overflowSeen) {
      (this.log.warn ?? this.log.error).call(
        this.log,
        { overflowed: overflowed - this.overflowSeen, total: overflowed, pending },
        'outbox bound reached: the oldest undelivered notifications were dead-lettered',
      );
    }
    this.overflowSeen = overflowed;
  }

  private async armTimer(): Promise<void> {
    if (this.stopped) return;
    await this.checkOverflow();
    const next = await this.store.nextDeliveryAt();
    const now = this.clock.now();
    const poll = this.clock.scale > 0 ? now + this.options.pollWallMs * this.clock.scale : Number.POSITIVE_INFINITY;
    // Entries due now that this claim left (no room) come with the deliveries in hand as they
    // finish; a timer for now would only claim past the free slots again and again.
    const due = next === undefined || (next <= now && this.inFlight.size > 0) ? Number.POSITIVE_INFINITY : next;
    const at = Math.min(due, poll);
    this.timer?.cancel();
    this.timer = Number.isFinite(at) ? this.clock.setTimer(Math.max(at, now), () => this.kick()) : undefined;
  }

  private isIdle(): boolean {
    return !this.pumping && !this.afterDeliveryKick && this.active === 0 && this.hosts.size === 0;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.settled) resolve();
    this.settled.clear();
  }
}

class DroppedByFault extends Error {
  constructor(
    readonly statusCode: number | null,
    message: string,
  ) {
    super(message);
    this.name = 'fault';
  }
}

function reachability(statusCode: number | null): string {
  return statusCode === null ? 'unreachable' : `HTTP ${statusCode}`;
}

function describe(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string };
  return [e.code ?? e.name, e.message].filter(Boolean).join(': ').slice(0, 300) || 'delivery failed';
}

/** AbortSignal.any (Node 20.3+), with a fallback for older Node 20 releases. */
function anySignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  const any = (AbortSignal as { any?: (signals: AbortSignal[]) => AbortSignal }).any;
  if (any) return any([a, b]);
  const c = new AbortController();
  const abort = (s: AbortSignal) => () => c.abort(s.reason);
  if (a.aborted || b.aborted) c.abort();
  a.addEventListener('abort', abort(a), { once: true });
  b.addEventListener('abort', abort(b), { once: true });
  return c.signal;
}
