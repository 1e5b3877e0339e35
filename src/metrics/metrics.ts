import type { CallObserver, ChangeType } from '../calls/call-events.js';
import type { CallSummary } from '../calls/call-types.js';
import type { CallStore, DeliveryAttempt } from '../store/call-store.js';
import { Counter, Gauge, Histogram, Registry } from './prom-classes.js';

interface RequestSeries {
  labels: { route: string; method: string; status: string };
  latencyLabels: { route: string; method: string };
  n: number;
  /** The keepAlive counter's series this one also counts in, for keepAlive routes. */
  keepAlive: { labels: { status: string }; n: number } | undefined;
}

/**
 * What GET /metrics exposes (Prometheus text format, prom-client). Each callkeeper has its own
 * registry, so several in one process (tests) do not mix their counts. Gauges read the store
 * when scraped: with several instances on one store they agree.
 */
export class CallkeeperMetrics implements CallObserver {
  readonly registry = new Registry();
  private readonly latency: Histogram<'route' | 'method'>;
  /**
   * The request counters, counted here and handed to prom-client when scraped: prom-client
   * validates and hashes the labels on every update, which was a few per cent of a keepAlive's
   * CPU (docs/benchmarks.md). Keyed by route, method and status; in first-seen order, as
   * prom-client lists its series.
   */
  private readonly requestSeries = new Map<string, RequestSeries>();
  private readonly keepAliveSeries = new Map<number, { labels: { status: string }; n: number }>();
  private readonly created: Counter<'direction'>;
  private readonly ended: Counter<'code' | 'subcode'>;
  private readonly deliveries: Counter<'outcome'>;
  private readonly deliveryLatency: Histogram<'outcome'>;

  constructor(store: CallStore) {
    const registers = [this.registry];
    const requestSeries = this.requestSeries;
    const keepAliveSeries = this.keepAliveSeries;
    new Counter({
      name: 'callkeeper_http_requests_total',
      help: 'Graph and control requests answered, by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
      collect() {
        this.reset();
        for (const s of requestSeries.values()) this.inc(s.labels, s.n);
      },
    });
    this.latency = new Histogram({
      name: 'callkeeper_http_request_duration_seconds',
      help: 'Time from request to response, wall clock',
      labelNames: ['route', 'method'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    new Counter({
      name: 'callkeeper_keepalives_total',
      help: 'keepAlive requests, by the status answered (200: the call was kept alive)',
      labelNames: ['status'],
      registers,
      collect() {
        this.reset();
        for (const s of keepAliveSeries.values()) this.inc(s.labels, s.n);
      },
    });
    this.created = new Counter({
      name: 'callkeeper_calls_created_total',
      help: 'Calls created or rung',
      labelNames: ['direction'],
      registers,
    });
    this.ended = new Counter({
      name: 'callkeeper_calls_ended_total',
      help: 'Calls ended, by resultInfo code and subcode (408/8537: keepAlive timeout)',
      labelNames: ['code', 'subcode'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'callkeeper_notification_deliveries_total',
      help: 'Notification delivery attempts, by outcome (delivered, retry, dead)',
      labelNames: ['outcome'],
      registers,
    });
    this.deliveryLatency = new Histogram({
      name: 'callkeeper_notification_delivery_duration_seconds',
      help: 'Time of one delivery attempt to the bot, wall clock',
      labelNames: ['outcome'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    new Gauge({
      name: 'callkeeper_active_calls',
      help: 'Calls not ended (in the store: all instances)',
      registers,
      async collect() {
        this.set((await store.counts()).active);
      },
    });
    new Gauge({
      name: 'callkeeper_outbox_depth',
      help: 'Notifications waiting to be delivered (in the store: all instances)',
      registers,
      async collect() {
        this.set(await store.outboxDepth());
      },
    });
    // The store counts overflows (every instance adds to it); the counter mirrors that count.
    new Counter({
      name: 'callkeeper_notifications_overflowed_total',
      help: 'Undelivered notifications dead-lettered because a call or the outbox reached its bound (in the store: all instances)',
      registers,
      async collect() {
        const { overflowed } = await store.outboxStats();
        this.reset();
        this.inc(overflowed);
      },
    });
  }

  /** One answered request; `route` is the route pattern (ids do not make new series). */
  request(route: string, method: string, status: number, seconds: number): void {
    const key = `${status} ${method} ${route}`;
    let s = this.requestSeries.get(key);
    if (!s) {
      s = { labels: { route, method, status: String(status) }, latencyLabels: { route, method }, n: 0, keepAlive: undefined };
      if (/\/(microsoft\.graph\.)?keepAlive$/.test(route)) {
        let k = this.keepAliveSeries.get(status);
        if (!k) {
          k = { labels: { status: String(status) }, n: 0 };
          this.keepAliveSeries.set(status, k);
        }
        s.keepAlive = k;
      }
      this.requestSeries.set(key, s);
    }
    s.n++;
    if (s.keepAlive) s.keepAlive.n++;
    this.latency.observe(s.latencyLabels, seconds);
  }

  delivery(attempt: DeliveryAttempt): void {
    this.deliveries.inc({ outcome: attempt.outcome });
    this.deliveryLatency.observe({ outcome: attempt.outcome }, attempt.latencyMs / 1000);
  }

  onCallChanged(call: CallSummary, change: ChangeType): void {
    if (change === 'created') this.created.inc({ direction: call.direction });
    if (call.state === 'terminated' && change === 'deleted' && call.resultInfo)
      this.ended.inc({ code: String(call.resultInfo.code), subcode: String(call.resultInfo.subcode) });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
