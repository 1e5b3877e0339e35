import { Pool } from 'undici';

export interface FixedRateSpec {
  origin: string;
  pathFor: () => string;
  headers: Record<string, string>;
  /** Requests per second, sent on schedule whatever the answers' pace (open loop). */
  rate: number;
  seconds: number;
  connections?: number;
}

export interface FixedRateResult {
  sent: number;
  ok: number;
  failed: number;
  /** Achieved rate of completed requests per second. */
  achievedRps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** How far behind schedule the generator itself fell at worst (its own event loop). */
  generatorLagMs: number;
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

/**
 * Open-loop load: request k is due at start + k/rate and is handed to the connection pool
 * then, whatever the answers' pace, so a stalled server cannot slow the sender down and hide
 * its queue (no coordinated omission); a request waiting for a free connection counts that
 * wait. Latency runs from the hand-over, not from the due moment: Node's timers tick about
 * once a millisecond, and that granularity is the generator's, not the server's (how late the
 * generator ran is reported as generatorLagMs). Latencies are kept at microsecond precision.
 */
export async function fixedRateLoad(spec: FixedRateSpec): Promise<FixedRateResult> {
  const pool = new Pool(spec.origin, { connections: spec.connections ?? 64, pipelining: 1 });
  const total = Math.round(spec.rate * spec.seconds);
  const latencies = new Float64Array(total);
  let sent = 0;
  let ok = 0;
  let failed = 0;
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  let generatorLagMs = 0;
  const fire = (k: number) => {
    const sentAt = performance.now();
    generatorLagMs = Math.max(generatorLagMs, sentAt - (start + (k * 1000) / spec.rate));
    const p = pool
      .request({ path: spec.pathFor(), method: 'POST', headers: spec.headers })
      .then(async (res) => {
        await res.body.dump();
        latencies[k] = performance.now() - sentAt;
        if (res.statusCode >= 200 && res.statusCode < 300) ok++;
        else failed++;
      })
      .catch(() => {
        latencies[k] = performance.now() - sentAt;
        failed++;
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };
  await new Promise<void>((resolve) => {
    const tick = () => {
      const dueCount = Math.min(total, Math.floor(((performance.now() - start) * spec.rate) / 1000) + 1);
      while (sent < dueCount) fire(sent++);
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  while (inflight.size) await Promise.all([...inflight]);
  const elapsed = (performance.now() - start) / 1000;
  await pool.close();
  const sorted = latencies.sort();
  return {
    sent,
    ok,
    failed,
    achievedRps: (ok + failed) / elapsed,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: percentile(sorted, 100),
    generatorLagMs,
  };
}
