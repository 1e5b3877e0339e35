import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { forkServer } from './children.js';
import type { BenchContext } from './context.js';
import { fixedRateLoad, percentile } from './fixed-rate.js';
import { fetchToken } from './graph-client.js';
import { keepAliveLoad } from './load.js';
import { type ScaleStores, seededPaths } from './scale.js';
import { seedCalls } from './seed.js';
import { fmt, type Row } from './table.js';

export const MASS = 100_000;
/** Calls of the mass store that stay live (deadline an hour later): the keepAlive load's targets during the expiry. */
const LIVE = 1_000;
/** keepAlives a second sent to the live calls while the 100,000 end (open loop), and for how long from the deadline. */
const DURING_RATE = 500;
const DURING_SECONDS = 8;
const LEAD_MS = 3_000;

export interface MassStore {
  dataDir: string;
  deadline: number;
}

/**
 * 100,000 calls that all end at the same moment (any moment: the child's clock starts just
 * before it), and 1,000 more that stay live, for keepAlives during the expiry.
 */
export async function seedMassStore(ctx: BenchContext): Promise<MassStore> {
  const dataDir = join(ctx.tmp, 'mass-100k');
  mkdirSync(dataDir, { recursive: true });
  const deadline = Date.UTC(2030, 0, 1);
  await seedCalls({
    dataDir,
    count: MASS + LIVE,
    callbackUri: ctx.callbackUri,
    createdAt: deadline - 45 * 60_000,
    deadline: (i) => (i <= MASS ? deadline : deadline + 3_600_000),
  });
  return { dataDir, deadline };
}

/** How many 'deleted' notifications the outbox holds (undefined: this build has no outbox). */
function queuedEndNotifications(dataDir: string): number | undefined {
  const db = new Database(join(dataDir, 'callkeeper.db'), { readonly: true });
  try {
    return db.prepare("SELECT count(*) FROM outbox WHERE transition = 'ended'").pluck().get() as number;
  } catch {
    return undefined;
  } finally {
    db.close();
  }
}

/** Calls of the store that have ended (read from the file, for when the server cannot answer). */
function endedInStore(dataDir: string): number {
  const db = new Database(join(dataDir, 'callkeeper.db'), { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM calls WHERE ended_at IS NOT NULL').pluck().get() as number;
  } finally {
    db.close();
  }
}

/**
 * 100,000 calls sharing one deadline: how long after it until every one has ended, with its
 * notifications queued. Gives up 30 s (wall) after the deadline.
 */
export async function benchMassExpiry(ctx: BenchContext, store: MassStore): Promise<Row[]> {
  ctx.log(`mass expiry: ${fmt.int(MASS)} calls, one deadline`);
  const child = await forkServer('server-child.ts', ['--data', store.dataDir, '--start-at', String(store.deadline - LEAD_MS)]);
  const giveUpAt = Date.now() + LEAD_MS + 30_000;
  let rep: { lags: number[]; lastEndAt: number } | undefined;
  let stalled: string | undefined;
  // Does the API keep answering? keepAlives on the live calls, on schedule, from the deadline on.
  const token = await fetchToken(child.url);
  const during = (async () => {
    while ((await child.ask('stats', 15_000)).now < store.deadline) await new Promise((r) => setTimeout(r, 20));
    return fixedRateLoad({
      origin: child.url,
      pathFor: seededPaths(MASS + 1, MASS + LIVE),
      headers: { authorization: `Bearer ${token}` },
      rate: DURING_RATE,
      seconds: DURING_SECONDS,
      connections: 16,
    });
  })();
  during.catch(() => {});
  try {
    for (;;) {
      if (Date.now() > giveUpAt) throw new Error('not all had ended 30 s after the deadline');
      const s = await child.ask('stats', 15_000);
      if (s.expired >= MASS) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    rep = await child.ask('expiries', 30_000);
  } catch (err) {
    stalled = String(err instanceof Error ? err.message : err);
  }
  const load = await during.catch(() => undefined);
  await child.stop();
  const ended = endedInStore(store.dataDir);
  const queued = queuedEndNotifications(store.dataDir);
  const lastMs = rep ? rep.lastEndAt - store.deadline : Number.NaN;
  ctx.raw.massExpiry = { ended, lastEndedAfterMs: lastMs, queuedEndNotifications: queued, stalled, keepAlivesDuring: load };
  const duringText = load
    ? `; keepAlives meanwhile (${fmt.int(DURING_RATE)}/s for ${DURING_SECONDS} s from the deadline): p50 ${fmt.ms(load.p50Ms)}, p99 ${fmt.ms(load.p99Ms)}, max ${fmt.ms(load.maxMs)}${load.failed ? `, ${fmt.int(load.failed)} failed` : ''}`
    : '; keepAlives meanwhile: not measured';
  ctx.log(
    `  ${ended} ended, the last ${lastMs} ms after the deadline; ${queued ?? 'no'} 'deleted' notifications queued${stalled ? `; ${stalled}` : ''}`,
  );
  const figure = `mass expiry: ${fmt.int(MASS)} calls, one deadline`;
  const target = 'all ended and notifications queued <= 2 s after it; keepAlive p99 meanwhile reported';
  if (!rep) {
    return [
      {
        figure,
        measured: `${fmt.int(ended)} of ${fmt.int(MASS)} ended${duringText}`,
        target,
        verdict: 'missed',
        note: stalled ?? 'no report',
      },
    ];
  }
  const measured = `${fmt.int(ended)} ended, the last ${fmt.s(lastMs / 1000)} after the deadline`;
  const limitMs = 2000;
  if (queued === undefined) {
    return [
      {
        figure,
        measured,
        target,
        verdict: ended === MASS && lastMs <= limitMs ? 'pending' : 'missed',
        note: 'this build has no notification outbox',
      },
    ];
  }
  // The outbox rows are written in the same transaction as each end, so "ended" is "queued".
  const ok = ended === MASS && queued >= MASS && lastMs <= limitMs;
  return [
    {
      figure,
      measured: `${measured}; ${fmt.int(queued)} 'deleted' notifications queued with them${duringText}`,
      target,
      verdict: ok ? 'met' : 'missed',
    },
  ];
}

/**
 * 1,000,000 calls whose deadlines fall one a millisecond (1,000 expiries a second) while a
 * full-speed keepAlive load runs on other calls of the same store: how late each call ends.
 */
export async function benchExpiryLag(ctx: BenchContext, stores: ScaleStores, calls: number): Promise<Row[]> {
  const child = await forkServer('server-child.ts', ['--data', stores.large, '--start-at', String(stores.expiryBase - LEAD_MS)]);
  const seconds = ctx.seconds * 2;
  ctx.log(`expiry lag: ${fmt.int(calls)} calls, 1,000 deadlines a second, ${seconds} s of keepAlive load`);
  const token = await fetchToken(child.url);
  // Load only calls whose deadlines lie beyond the measured window (ids above 60%).
  const target = {
    origin: child.url,
    pathFor: seededPaths(Math.floor(calls * 0.6), calls),
    headers: { authorization: `Bearer ${token}` },
  };
  for (;;) {
    const s = await child.ask('stats');
    if (s.now >= stores.expiryBase + 500) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const from = (await child.ask('stats')).now;
  // The server's own event-loop delay over the same window: the sweep runs on that loop, so a
  // call's lag is at least the delay of the turn its deadline fell in.
  await child.ask('loopStart');
  const load = await keepAliveLoad({ ...target, seconds });
  const loop = await child.ask('loopStop');
  const to = (await child.ask('stats')).now;
  // Let the last due ones of the window end before asking.
  await new Promise((r) => setTimeout(r, 300));
  const rep = await child.ask('expiries');
  await child.stop();
  const lags: number[] = [];
  rep.deadlines.forEach((d, i) => {
    const lag = rep.lags[i];
    if (d >= from && d < to && lag !== undefined) lags.push(lag);
  });
  const sorted = Float64Array.from(lags).sort();
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  const max = percentile(sorted, 100);
  const rate = lags.length / ((to - from) / 1000);
  const eventLoop = { p50Ms: loop.p50Ms, p99Ms: loop.p99Ms, maxMs: loop.maxMs };
  ctx.raw.expiryLag = { count: lags.length, p50, p99, max, expiriesPerSecond: rate, load, eventLoop };
  ctx.log(
    `  ${lags.length} expiries, lag p50 ${p50} p99 ${p99} max ${max} ms; event-loop delay p99 ${eventLoop.p99Ms.toFixed(1)} max ${eventLoop.maxMs.toFixed(1)} ms; load ${Math.round(load.rps)} req/s`,
  );
  return [
    {
      figure: `expiry lag: ${fmt.int(calls)} calls, spread deadlines, under keepAlive load`,
      measured:
        `p99 ${fmt.ms(p99)} (p50 ${fmt.ms(p50)}, max ${fmt.ms(max)}) over ${fmt.int(lags.length)} expiries at ${fmt.int(Math.round(rate))}/s,` +
        ` with ${fmt.rps(load.rps)} of keepAlive; the server's event-loop delay meanwhile p99 ${fmt.ms(eventLoop.p99Ms)}, max ${fmt.ms(eventLoop.maxMs)}`,
      target: 'p99 lag <= 25 ms',
      verdict: lags.length > 0 && p99 <= 25 ? 'met' : 'missed',
      ...(lags.length === 0 ? { note: 'no expiry observed in the window' } : {}),
    },
  ];
}
