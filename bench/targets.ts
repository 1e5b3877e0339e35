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
}

export interface Aggregate {
  rps: number;
  failed: number;
  rounds: LoadResult[];
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
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      const res = await keepAliveLoad({ ...t, seconds: ctx.seconds });
      const agg = out.get(t.name);
      if (!agg) continue;
      agg.rounds.push(res);
      agg.failed += res.failed;
      agg.rps = agg.rounds.reduce((s, x) => s + x.rps, 0) / agg.rounds.length;
      ctx.log(`  ${t.name}: ${Math.round(res.rps)} req/s${res.failed ? ` (${res.failed} failed)` : ''}`);
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
    target: { name, origin: child.url, pathFor: randomPaths(ids), headers: { authorization: `Bearer ${token}` } },
  };
}
