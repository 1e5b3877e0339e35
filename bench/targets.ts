import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { forkServer, type ServerChild } from './children.js';
import { type BenchContext, notificationsSettled } from './context.js';
import { createCalls, fetchToken } from './graph-client.js';
import { keepAliveLoad, type LoadResult, randomPaths } from './load.js';

/** Something to put keepAlive load on. */
export interface Target {
  name: string;
  origin: string;
  pathFor: () => string;
  headers: Record<string, string>;
  /** The server's CPU time so far (microseconds), when it can tell: CPU per request is then reported. */
  cpuUs?: () => Promise<number>;
}

export interface Aggregate {
  rps: number;
  failed: number;
  rounds: LoadResult[];
  /**
   * The server's CPU time per answered request over the measured rounds (microseconds), when
   * the target tells its CPU time: unlike req/s it hardly depends on the load generator's share
   * of the cores, so it says where a server's time goes even on a noisy machine.
   */
  cpuUsPerRequest?: number;
}

/**
 * Measures several targets in alternation (A B C A B C ...) so that a noisy neighbour on the
 * shared machine hits all of them alike; each target first gets an unmeasured warm-up run.
 */
export async function alternate(
  ctx: BenchContext,
  targets: readonly Target[],
  rounds: number,
  warmupSeconds = 1,
): Promise<Map<string, Aggregate>> {
  const out = new Map<string, Aggregate>();
  for (const t of targets) {
    await keepAliveLoad({ ...t, seconds: warmupSeconds });
    out.set(t.name, { rps: 0, failed: 0, rounds: [] });
  }
  const cpu = new Map<string, { us: number; ok: number }>();
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      const before = await t.cpuUs?.();
      const res = await keepAliveLoad({ ...t, seconds: ctx.seconds });
      const after = await t.cpuUs?.();
      const agg = out.get(t.name);
      if (!agg) continue;
      agg.rounds.push(res);
      agg.failed += res.failed;
      agg.rps = agg.rounds.reduce((s, x) => s + x.rps, 0) / agg.rounds.length;
      let cpuNote = '';
      if (before !== undefined && after !== undefined && res.ok > 0) {
        const c = cpu.get(t.name) ?? { us: 0, ok: 0 };
        c.us += after - before;
        c.ok += res.ok;
        cpu.set(t.name, c);
        agg.cpuUsPerRequest = c.us / c.ok;
        cpuNote = `, ${((after - before) / res.ok).toFixed(1)} µs CPU per request`;
      }
      ctx.log(`  ${t.name}: ${Math.round(res.rps)} req/s${res.failed ? ` (${res.failed} failed)` : ''}${cpuNote}`);
    }
  }
  return out;
}

export interface CallkeeperServer {
  child: ServerChild;
  target: Target;
  dataDir: string;
}

/**
 * A callkeeper child on a fresh on-disk store with `calls` calls created through the Graph
 * API, and a keepAlive target over them with a real bearer token.
 */
export async function startCallkeeper(
  ctx: BenchContext,
  name: string,
  calls: number,
  args: string[] = [],
  callbackUri = ctx.callbackUri,
): Promise<CallkeeperServer> {
  const dataDir = mkdtempSync(join(ctx.tmp, 'ck-'));
  const child = await forkServer('server-child.ts', ['--data', dataDir, ...args]);
  const token = await fetchToken(child.url);
  const ids = await createCalls(child.url, token, calls, callbackUri);
  // Each new call is established a second later (with a notification each): let that pass.
  await new Promise((r) => setTimeout(r, 1_500));
  await notificationsSettled(ctx);
  return {
    child,
    dataDir,
    target: {
      name,
      origin: child.url,
      pathFor: randomPaths(ids),
      headers: { authorization: `Bearer ${token}` },
      cpuUs: async () => (await child.ask('stats')).cpuUs,
    },
  };
}
