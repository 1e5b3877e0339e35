import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { forkServer, type ServerChild } from './children.js';
import type { BenchContext } from './context.js';
import { fetchToken } from './graph-client.js';
import { seedCalls, seededCallId, storeBytes } from './seed.js';
import { fmt, type Row } from './table.js';
import { alternate, type Target } from './targets.js';

export const SMALL = 1_000;
export const LARGE = 1_000_000;
const MINUTE = 60_000;

export interface ScaleStores {
  small: string;
  large: string;
  /**
   * The large store's deadlines: call i ends at expiryBase + i ms, one a millisecond over
   * 1,000 s. expiryBase is 20 minutes after seeding, so on the wall clock none is due while
   * the bench runs; the expiry-lag child starts its clock just before it.
   */
  expiryBase: number;
}

/** Writes the 1,000- and 1,000,000-call stores (about 10-20 s; run while the peers install). */
export async function seedScaleStores(ctx: BenchContext): Promise<ScaleStores> {
  const now = Date.now();
  const small = join(ctx.tmp, 'scale-1k');
  const large = join(ctx.tmp, 'scale-1m');
  mkdirSync(small, { recursive: true });
  mkdirSync(large, { recursive: true });
  const expiryBase = now + 20 * MINUTE;
  await seedCalls({ dataDir: small, count: SMALL, callbackUri: ctx.callbackUri, createdAt: now, deadline: () => now + 45 * MINUTE });
  const { seconds } = await seedCalls({
    dataDir: large,
    count: LARGE,
    callbackUri: ctx.callbackUri,
    createdAt: now - 25 * MINUTE,
    deadline: (i) => expiryBase + i,
  });
  ctx.log(`seeded ${fmt.int(LARGE)} calls in ${seconds.toFixed(1)} s (${fmt.mb(storeBytes(large).total)})`);
  ctx.raw.seedLargeSeconds = seconds;
  return { small, large, expiryBase };
}

/** keepAlive paths over seeded calls with rids in [from, to], picked at random. */
export function seededPaths(from: number, to: number): () => string {
  return () => `/v1.0/communications/calls/${seededCallId(from + Math.floor(Math.random() * (to - from + 1)))}/keepAlive`;
}

/** Samples a child's RSS every 250 ms until stopped; returns the peak. */
function watchRss(child: ServerChild): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, (await child.ask('stats')).rss);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

/** 1,000 vs 1,000,000 active calls: keepAlive throughput (alternating), peak RSS, store size. */
export async function benchScale(ctx: BenchContext, stores: ScaleStores): Promise<Row[]> {
  const smallChild = await forkServer('server-child.ts', ['--data', stores.small]);
  const largeChild = await forkServer('server-child.ts', ['--data', stores.large]);
  const target = async (name: string, child: ServerChild, count: number): Promise<Target> => ({
    name,
    origin: child.url,
    pathFor: seededPaths(1, count),
    headers: { authorization: `Bearer ${await fetchToken(child.url)}` },
    // The server's own CPU per keepAlive: what the store's size costs, hardly moved by how
    // much of the shared cores the load generator and the neighbours take in a round.
    cpuUs: async () => (await child.ask('stats')).cpuUs,
  });
  const small = await target('1,000 calls', smallChild, SMALL);
  const large = await target('1,000,000 calls', largeChild, LARGE);
  const rssSmall = watchRss(smallChild);
  const rssLarge = watchRss(largeChild);
  ctx.log(`scale: ${small.name} / ${large.name} (keepAlives spread over every call), 2 rounds`);
  const res = await alternate(ctx, [small, large], 2);
  const peakSmall = await rssSmall.stop();
  const peakLarge = await rssLarge.stop();
  const bytesSmall = storeBytes(stores.small);
  const bytesLarge = storeBytes(stores.large);
  await smallChild.stop();
  await largeChild.stop();
  const s = res.get(small.name);
  const l = res.get(large.name);
  if (!s || !l) throw new Error('scale: missing result');
  const ratio = l.rps / s.rps;
  const cpu = (a: typeof s) => (a.cpuUsPerRequest === undefined ? '?' : `${a.cpuUsPerRequest.toFixed(1)} µs`);
  ctx.raw.scale = {
    small: s,
    large: l,
    peakRss: { small: peakSmall, large: peakLarge },
    storeBytes: { small: bytesSmall, large: bytesLarge },
  };
  return [
    {
      figure: 'scale: keepAlive throughput, 1,000,000 vs 1,000 calls',
      measured: `${fmt.rps(l.rps)} vs ${fmt.rps(s.rps)}: ${fmt.ratio(ratio)}`,
      target: 'ratio >= 0.9',
      verdict: ratio >= 0.9 && l.failed === 0 && s.failed === 0 ? 'met' : 'missed',
      note: `server CPU per keepAlive ${cpu(l)} vs ${cpu(s)}${l.failed + s.failed ? `; ${l.failed + s.failed} requests failed` : ''}`,
    },
    {
      figure: 'scale: peak RSS under load',
      measured: `${fmt.mb(peakLarge)} with 1,000,000 calls, ${fmt.mb(peakSmall)} with 1,000`,
      target: '<= 300 MB',
      verdict: peakLarge <= 300 * 2 ** 20 ? 'met' : 'missed',
    },
    {
      figure: 'scale: store size after the load (db + WAL)',
      measured:
        `${fmt.mb(bytesLarge.db)} + ${fmt.mb(bytesLarge.wal)} WAL with 1,000,000 calls,` +
        ` ${fmt.mb(bytesSmall.db)} + ${fmt.mb(bytesSmall.wal)} WAL with 1,000`,
      target: 'reported',
      verdict: 'reported',
    },
  ];
}
