import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Pool } from 'undici';
import { forkServer } from './children.js';

export interface FixedRateSpec {
  origin: string;
  pathFor: () => string;
  headers: Record<string, string>;
  /** Requests per second, sent on schedule whatever the answers' pace (open loop). */
  rate: number;
  seconds: number;
  connections?: number;
  /**
   * Seconds of the same load first, unmeasured, on the same connections: the measured part then
   * starts with every connection open and both ends warm (JIT), not with 64 connects.
   */
  warmupSeconds?: number;
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
  /**
   * The generator's own event-loop delay during the measured part (p99 and max, ms): a response
   * that arrives while the generator's loop is busy waits for it, and that wait counts in the
   * latencies, so this is the measurement's own floor.
   */
  generatorLoopDelayP99Ms: number;
  generatorLoopDelayMaxMs: number;
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
  try {
    if (spec.warmupSeconds) await openLoop(pool, { ...spec, seconds: spec.warmupSeconds });
    return await openLoop(pool, spec);
  } finally {
    await pool.close();
  }
}

async function openLoop(pool: Pool, spec: FixedRateSpec): Promise<FixedRateResult> {
  const total = Math.round(spec.rate * spec.seconds);
  const latencies = new Float64Array(total);
  let sent = 0;
  let ok = 0;
  let failed = 0;
  const inflight = new Set<Promise<void>>();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
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
  loop.disable();
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
    generatorLoopDelayP99Ms: loop.percentile(99) / 1e6,
    generatorLoopDelayMaxMs: loop.max / 1e6,
  };
}

/**
 * fixedRateLoad in a process of its own (bench/fixed-rate-child.ts), started for this one run:
 * the bench's event loop, its heap (autocannon's results of earlier rows) and its garbage
 * collections stay out of the latencies, which a generator sharing them measures too. The paths
 * are drawn here, in order, before the run.
 */
export async function fixedRateLoadApart(spec: FixedRateSpec): Promise<FixedRateResult> {
  const count = Math.round(spec.rate * (spec.seconds + (spec.warmupSeconds ?? 0))) + 1;
  const paths = Array.from({ length: count }, () => spec.pathFor());
  const { pathFor: _, ...plain } = spec;
  const child = await forkServer('fixed-rate-child.ts');
  try {
    return await new Promise<FixedRateResult>((resolve, reject) => {
      child.proc.once('exit', (code) => reject(new Error(`the load generator exited (${code})`)));
      child.proc.on('message', (m: { type: string; result?: FixedRateResult; error?: string }) => {
        if (m.type === 'result' && m.result) resolve(m.result);
        if (m.type === 'error') reject(new Error(`the load generator failed: ${m.error}`));
      });
      child.proc.send({ type: 'run', spec: plain, paths });
    });
  } finally {
    await child.stop();
  }
}
