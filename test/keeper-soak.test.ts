/**
 * 10,000 calls against a real callkeeper server for 10 virtual hours, on one ManualClock.
 *
 * The run happens in a worker thread: node:test tracks every async resource of the thread its
 * tests run in (an async hook), which nearly doubles the cost of each HTTP round trip; a worker
 * has no such hook. The test thread only checks what the worker reports.
 *
 * By default the run is 5,000 calls for 2 virtual hours at a 30-minute interval (20,000
 * keepAlives, a few seconds): enough for two token lifetimes and a per-second spread with a mean
 * of about 3 sends. CALLKEEPER_SOAK=long runs the full soak: 10,000 calls for 10 hours (200,000
 * keepAlives, about 35 s of wall time on 2 idle cores, over 4 minutes on a loaded machine).
 * KEEPER_SOAK_CALLS, KEEPER_SOAK_HOURS and KEEPER_SOAK_INTERVAL (minutes) resize either; at the
 * keeper's default interval of 15 minutes the long run is 400,000 keepAlives and twice the time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { KeepAlive } from '../src/keeper/keep-alive.js';
import type { TokenCredentialLike } from '../src/keeper/token-source.js';
import { HOUR, MINUTE, perSecond, startRig } from './keeper-harness.test.js';
import { workerBoot } from './paths.js';

interface SoakPlan {
  calls: number;
  hours: number;
  intervalMs: number;
}

interface SoakReport {
  t0: number;
  sentAt: Float64Array;
  failed: number;
  ended: number;
  tokenFetches: number;
  maxLateMs: number;
  active: number;
  endedOnServer: number;
  wallMs: number;
  cpuMs: number;
}

const long = process.env.CALLKEEPER_SOAK === 'long';
const plan: SoakPlan = {
  calls: Number(process.env.KEEPER_SOAK_CALLS ?? (long ? 10_000 : 5_000)),
  hours: Number(process.env.KEEPER_SOAK_HOURS ?? (long ? 10 : 2)),
  intervalMs: Number(process.env.KEEPER_SOAK_INTERVAL ?? 30) * MINUTE,
};

/** The run itself: server and keeper share one ManualClock, stepped one virtual second at a time. */
async function soak(p: SoakPlan): Promise<SoakReport> {
  const rig = await startRig();
  try {
    const ids = await rig.createCalls(p.calls);
    const real = rig.credential();
    let tokenFetches = 0;
    const credential: TokenCredentialLike = {
      getToken(scopes) {
        tokenFetches += 1;
        return real.getToken(scopes);
      },
    };
    const keeper = new KeepAlive({ baseUrl: rig.graph, credential, clock: rig.clock, interval: p.intervalMs });
    const sentAt = new Float64Array(Math.ceil(p.calls * ((p.hours * HOUR) / p.intervalMs + 2)));
    let sent = 0;
    let failed = 0;
    let ended = 0;
    // How late each keepAlive left against the time it was due (the tick allows up to 1 s).
    const dueOf = new Map<string, number>();
    let maxLateMs = 0;
    keeper.on('sent', (e) => {
      sentAt[sent++] = e.sentAt;
      const due = dueOf.get(e.callId);
      if (due !== undefined) maxLateMs = Math.max(maxLateMs, e.sentAt - due);
      dueOf.set(e.callId, e.nextAt);
    });
    keeper.on('attemptFailed', () => {
      failed += 1;
    });
    keeper.on('ended', () => {
      ended += 1;
    });
    const t0 = rig.clock.now();
    for (const id of ids) keeper.track(id);
    const wall = performance.now();
    const cpu = process.cpuUsage();
    // 10-second steps: the ManualClock fires the keeper's one-second ticks at their own moments
    // inside each step, so every send's time (and its lateness against its slot) is exact; the
    // answers are handled at the step's end, which the 30-minute cadence does not notice.
    await rig.run(keeper, p.hours * HOUR, 10_000);
    const used = process.cpuUsage(cpu);
    const wallMs = performance.now() - wall;
    await keeper.close();
    const counts = await rig.ck.store.counts();
    return {
      t0,
      sentAt: sentAt.slice(0, sent),
      failed,
      ended,
      tokenFetches,
      maxLateMs,
      active: counts.active,
      endedOnServer: counts.ended,
      wallMs,
      cpuMs: (used.user + used.system) / 1000,
    };
  } finally {
    await rig.close();
  }
}

/** Runs `soak` in a worker thread (with tsx's loader registered there too, unless compiled). */
function soakInWorker(p: SoakPlan): Promise<SoakReport> {
  const worker = new Worker(workerBoot(import.meta.url), { eval: true, workerData: p });
  return new Promise((resolve, reject) => {
    worker.once('message', (r: SoakReport) => resolve(r));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`soak worker exited (${code}) without a report`)));
  });
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  soak(workerData as SoakPlan).then(
    (r) => {
      port.postMessage(r);
      port.close();
    },
    (err: unknown) => {
      throw err;
    },
  );
} else {
  test(`${plan.calls} calls kept alive for ${plan.hours} virtual hours: none ends, and no second sees more than twice the mean send rate`, async () => {
    const r = await soakInWorker(plan);
    assert.equal(r.endedOnServer, 0, 'no call ended on the server');
    assert.equal(r.active, plan.calls);
    assert.equal(r.failed, 0);
    assert.equal(r.ended, 0);
    // Each call's first keepAlive goes out within the first interval, then one every interval.
    const expected = plan.calls * ((plan.hours * HOUR) / plan.intervalMs);
    assert.ok(Math.abs(r.sentAt.length - expected) <= plan.calls, `about ${expected} keepAlives, got ${r.sentAt.length}`);
    assert.ok(r.tokenFetches >= plan.hours, `tokens live an hour: ${r.tokenFetches} fetched`);
    const rate = perSecond(Array.from(r.sentAt), r.t0, r.t0 + plan.hours * HOUR);
    assert.ok(rate.max <= 2 * rate.mean, `busiest second ${rate.max} vs mean ${rate.mean.toFixed(2)}`);
    // And the spread is the slots' doing, not the rate limiter's: every keepAlive left in the tick it was due.
    assert.ok(r.maxLateMs < 1000, `a keepAlive left ${r.maxLateMs} ms after it was due`);
    process.stdout.write(
      `# soak: ${r.sentAt.length} keepAlives, ${plan.calls} calls, ${plan.hours} h virtual, interval ${plan.intervalMs / MINUTE} min: ` +
        `${(r.wallMs / 1000).toFixed(1)} s wall, ${(r.cpuMs / 1000).toFixed(1)} s CPU; per second max ${rate.max}, mean ${rate.mean.toFixed(2)}; ` +
        `${r.tokenFetches} token fetches; latest send ${r.maxLateMs} ms after due\n`,
    );
  });
}
