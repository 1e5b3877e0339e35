import { Counter, Gauge, register as globalRegistry, Histogram, type Registry } from 'prom-client';
import type { KeepAlive } from './keep-alive.js';
import type { AttemptFailedEvent, EndedEvent, SentEvent } from './keep-alive-events.js';

export interface KeeperMetricsOptions {
  /** The prom-client registry to register with. Default: prom-client's global one. */
  registry?: Registry;
  /** Metric name prefix. Default `callkeeper_keeper_`. */
  prefix?: string;
  /** Histogram buckets, seconds. Default 5 ms to 10 s. */
  buckets?: number[];
}

export interface KeeperMetrics {
  /** Stops listening and removes the metrics from the registry. */
  remove(): void;
}

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Publishes a keeper's activity as Prometheus metrics (prom-client): keepAlives sent, failures
 * by status, request latency, calls at risk, calls held (in shared keeping: the leases this
 * replica holds) and calls ended. One adapter per keeper; call `remove()` before making another
 * on the same registry.
 */
export function keeperMetrics(keeper: KeepAlive, options: KeeperMetricsOptions = {}): KeeperMetrics {
  const registry = options.registry ?? globalRegistry;
  const prefix = options.prefix ?? 'callkeeper_keeper_';
  const registers = [registry];
  const sent = new Counter({ name: `${prefix}keepalives_sent_total`, help: 'keepAlives Graph accepted', registers });
  const failures = new Counter({
    name: `${prefix}keepalive_failures_total`,
    help: 'failed keepAlive attempts, by HTTP status ("network" when no answer came, "token" when no token could be had)',
    labelNames: ['status', 'permanent'] as const,
    registers,
  });
  const ended = new Counter({ name: `${prefix}calls_ended_total`, help: 'calls Graph ended (404 8522)', registers });
  const latency = new Histogram({
    name: `${prefix}keepalive_duration_seconds`,
    help: 'keepAlive request latency, wall-clock seconds (the token included)',
    labelNames: ['outcome'] as const,
    buckets: options.buckets ?? DEFAULT_BUCKETS,
    registers,
  });
  const tracked = new Gauge({
    name: `${prefix}calls_tracked`,
    help: 'calls this keeper holds and sends keepAlives for',
    registers,
    collect() {
      this.set(keeper.stats().tracked);
    },
  });
  const atRisk = new Gauge({
    name: `${prefix}calls_at_risk`,
    help: 'calls without a successful keepAlive for longer than atRiskAfter',
    registers,
    collect() {
      this.set(keeper.stats().atRisk);
    },
  });
  const leases = new Gauge({
    name: `${prefix}leases_held`,
    help: 'call leases this replica holds (equal to calls_tracked outside shared keeping)',
    registers,
    collect() {
      const s = keeper.stats();
      this.set(s.leases ?? s.tracked);
    },
  });
  void [tracked, atRisk, leases];
  const names = [
    'keepalives_sent_total',
    'keepalive_failures_total',
    'calls_ended_total',
    'keepalive_duration_seconds',
    'calls_tracked',
    'calls_at_risk',
    'leases_held',
  ].map((n) => `${prefix}${n}`);
  const onSent = (e: SentEvent) => {
    sent.inc();
    latency.observe({ outcome: 'sent' }, e.latencyMs / 1000);
  };
  const onFailed = (e: AttemptFailedEvent) => {
    const status =
      e.status !== undefined
        ? String(e.status)
        : e.permanent === 'invalidClient' || e.permanent === 'unauthorizedClient'
          ? 'token'
          : 'network';
    failures.inc({ status, permanent: e.permanent ? 'true' : 'false' });
    if (e.latencyMs !== undefined) latency.observe({ outcome: 'failed' }, e.latencyMs / 1000);
  };
  const onEnded = (_e: EndedEvent) => ended.inc();
  keeper.on('sent', onSent);
  keeper.on('attemptFailed', onFailed);
  keeper.on('ended', onEnded);
  return {
    remove() {
      keeper.off('sent', onSent);
      keeper.off('attemptFailed', onFailed);
      keeper.off('ended', onEnded);
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}
