import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import type { CallObserver } from '../calls/call-events.js';
import type { Clock, Timer } from '../clock/clock.js';
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
  private again = false;
  private stopped = true;
  private readonly settled = new Set<() => void>();
  private closed: Promise<void> | undefined;
  /** The store's overflow counter when last looked at, and when (wall ms). */
  private overflowSeen: number | undefined;
  private overflowCheckedAt = 0;
  /**
   * Its own connection pool, not undici's global one: that one is shared with the process's
   * fetch, which callkeeper must leave as it found it.
   */
  private readonly agent: Agent;
  /** Aborted when a stop's grace period is over. */
  private readonly shutdown = new AbortController();

  constructor(
    private readonly store: OutboxPort,
    private readonly clock: Clock,
    private readonly signer: NotificationSigner,
    private readonly log: Logger,
    private readonly options: DispatcherOptions = DEFAULT_DISPATCHER,
  ) {
    this.agent = new Agent({ connections: options.perHostConcurrency, connectTimeout: options.requestTimeoutMs });
  }

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
      return this.agent.destroy();
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

  /** Delivers everything due now, and what becomes due as those finish; for tests and the control API. */
  async flush(): Promise<void> {
    for (let round = 0; round < 1000; round++) {
      await this.pump();
      await this.idle();
      const next = await this.store.nextDeliveryAt();
      if (next === undefined || next > this.clock.now()) return;
    }
  }

  /** Claims and starts whatever is due now; resolves when that claim is done (not the deliveries). */
  async pump(): Promise<void> {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        if (this.stopped) break;
        const free = this.options.concurrency - this.active;
        if (free <= 0) break;
        const now = this.clock.now();
        const lease = now + this.leaseMs();
        const entries = await this.store.claimDeliveries(now, free * 2, lease);
        for (const e of entries) this.enqueue(e);
        if (entries.length === free * 2) this.again = true;
      } while (this.again);
      await this.armTimer();
    } catch (err) {
      this.log.error({ err }, 'claiming notifications failed');
    } finally {
      this.pumping = false;
      this.checkIdle();
    }
  }

  private kick(): void {
    if (!this.stopped) void this.pump();
  }

  /**
   * A lease outlives the longest request (in virtual time), so no live delivery is claimed
   * twice; and no longer, since a crashed instance's claims wait that long to come back.
   */
  private leaseMs(): number {
    const wall = this.options.requestTimeoutMs + 1_000;
    return this.clock.scale > 0 ? wall * this.clock.scale : wall;
  }

  private enqueue(e: OutboxEntry): void {
    const held = this.inFlight.get(e.seq);
    if (held) {
      // Claimed again while still ours (its lease ran out in virtual time, e.g. a clock advance
      // during the request): the newer token is the one to finish with.
      held.lease = Math.max(held.lease, e.lease);
      return;
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
    if (q.waiting.length >= MAX_WAITING_PER_HOST) return;
    this.inFlight.set(e.seq, e);
    q.waiting.push(e);
    this.drain(host, q);
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
        this.kick();
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
        dispatcher: this.agent,
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
    const wall = Date.now();
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
    const poll = this.clock.scale > 0 ? this.clock.now() + this.options.pollWallMs * this.clock.scale : Number.POSITIVE_INFINITY;
    const at = Math.min(next ?? Number.POSITIVE_INFINITY, poll);
    this.timer?.cancel();
    this.timer = Number.isFinite(at) ? this.clock.setTimer(Math.max(at, this.clock.now()), () => this.kick()) : undefined;
  }

  private isIdle(): boolean {
    return !this.pumping && this.active === 0 && this.hosts.size === 0;
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
