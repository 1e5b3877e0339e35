/**
 * callkeeper on the Redis store (`serve --store redis://...`): Redis commands per keepAlive
 * (INFO commandstats around a run of keepAlives), keepAlive throughput of one and of two
 * instances on one Redis next to a bare node:http server in the same run, and 100,000 calls
 * ending on one deadline. redis-server runs as test/redis-server.ts starts it (loopback, no
 * persistence: what is measured is callkeeper's work and its round trips, not the disk).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { RedisStore } from '../src/store/redis/redis-store.js';
import { type RedisServer, startRedis } from '../test/redis-server.js';
import { forkServer, type ServerChild } from './children.js';
import { type BenchContext, notificationsSettled } from './context.js';
import { MASS } from './expiry.js';
import { fixedRateLoad } from './fixed-rate.js';
import { createCalls, fetchToken } from './graph-client.js';
import { keepAliveLoad, type LoadResult, randomPaths } from './load.js';
import { seededPaths } from './scale.js';
import { seededCallId } from './seed.js';
import { fmt, type Row } from './table.js';

const exec = promisify(execFile);

/** Every command Redis executed so far, by name (INFO commandstats). */
async function commandCounts(redis: RedisServer): Promise<Map<string, number>> {
  const { stdout } = await exec('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), 'INFO', 'commandstats'], { timeout: 30_000 });
  const out = new Map<string, number>();
  for (const m of stdout.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1] as string, Number(m[2]));
  return out;
}

function delta(before: Map<string, number>, after: Map<string, number>): { total: number; by: Record<string, number> } {
  const by: Record<string, number> = {};
  let total = 0;
  for (const [name, n] of after) {
    // The bench's own INFO calls are not callkeeper's.
    if (name === 'info') continue;
    const d = n - (before.get(name) ?? 0);
    if (d > 0) {
      by[name] = d;
      total += d;
    }
  }
  return { total, by };
}

/** CPU time redis-server has used so far (INFO cpu: user + sys, all its threads), microseconds. */
async function redisCpuUs(redis: RedisServer): Promise<number> {
  const { stdout } = await exec('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), 'INFO', 'cpu'], { timeout: 30_000 });
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(stdout)?.[1] ?? Number.NaN);
  return Math.round((field('used_cpu_user') + field('used_cpu_sys')) * 1e6);
}

/**
 * Reads Redis processed from client sockets (INFO stats): one per round trip, as a client
 * writes a request (or a pipeline) at once and waits for its answer.
 */
async function readsProcessed(redis: RedisServer): Promise<number> {
  const { stdout } = await exec('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), 'INFO', 'stats'], { timeout: 30_000 });
  return Number(/^total_reads_processed:(\d+)/m.exec(stdout)?.[1] ?? Number.NaN);
}

async function startOnRedis(ctx: BenchContext, redis: RedisServer, extra: string[] = []): Promise<ServerChild> {
  return forkServer('server-child.ts', ['--data', mkdtempSync(join(ctx.tmp, 'ck-redis-')), '--store', redis.url, ...extra]);
}

/** Rows: Redis commands per keepAlive; throughput of 1 and 2 instances on one Redis vs bare node:http. */
export async function benchRedis(ctx: BenchContext): Promise<Row[]> {
  const redis = await startRedis();
  const children: ServerChild[] = [];
  try {
    const a = await startOnRedis(ctx, redis);
    children.push(a);
    const token = await fetchToken(a.url);
    const ids = await createCalls(a.url, token, 1_000, ctx.callbackUri);
    await new Promise((r) => setTimeout(r, 1_500));
    await notificationsSettled(ctx);
    const headers = { authorization: `Bearer ${token}` };
    const pathFor = randomPaths(ids);
    const bareChild = await forkServer('bare-child.ts');
    children.push(bareChild);
    ctx.log(`redis: commands per keepAlive, then bare / 1 instance / 2 instances, 2 rounds of ${ctx.seconds} s`);

    // Commands per keepAlive: one instance alone, a run of keepAlives between two INFO snapshots
    // (commands run inside scripts included); then round trips, from MONITOR, over a short run.
    await keepAliveLoad({ origin: a.url, pathFor, headers, seconds: 1 });
    const before = await commandCounts(redis);
    const readsBefore = await readsProcessed(redis);
    const run = await keepAliveLoad({ origin: a.url, pathFor, headers, seconds: Math.max(2, Math.round(ctx.seconds / 2)) });
    // Less the two INFO requests of this measurement's own.
    const trips = (await readsProcessed(redis)) - readsBefore - 2;
    const used = delta(before, await commandCounts(redis));
    const keepAlives = Math.max(1, run.ok + run.failed);
    const perKeepAlive = used.total / keepAlives;
    const tripsPerKeepAlive = trips / keepAlives;
    const scriptsPerKeepAlive = (used.by.evalsha ?? 0) / keepAlives;
    ctx.log(
      `  ${fmt.int(trips)} round trips, ${fmt.int(used.total)} Redis commands for ${fmt.int(run.ok)} keepAlives: ${JSON.stringify(used.by)}`,
    );

    const b = await startOnRedis(ctx, redis);
    children.push(b);
    const bTokenHeaders = { authorization: `Bearer ${await fetchToken(b.url)}` };
    const bare = { origin: bareChild.url, pathFor, headers };
    const one = { origin: a.url, pathFor, headers };
    // Two instances: the same total connections, half on each, at once.
    const two = async (seconds: number): Promise<LoadResult> => {
      const [x, y] = await Promise.all([
        keepAliveLoad({ origin: a.url, pathFor, headers, seconds, connections: 16 }),
        keepAliveLoad({ origin: b.url, pathFor, headers: bTokenHeaders, seconds, connections: 16 }),
      ]);
      return {
        rps: x.rps + y.rps,
        ok: x.ok + y.ok,
        failed: x.failed + y.failed,
        p50Ms: Math.max(x.p50Ms, y.p50Ms),
        p99Ms: Math.max(x.p99Ms, y.p99Ms),
      };
    };
    await keepAliveLoad({ ...bare, seconds: 1 });
    await two(1);
    const sums = { bare: 0, one: 0, two: 0, failed: 0 };
    // CPU time per answered keepAlive (µs): the bare server's, and the one instance's with Redis's
    // beside it. Unlike req/s these hardly depend on the load generator's share of the cores.
    const cpu = { bareUs: 0, bareOk: 0, serverUs: 0, redisUs: 0, oneOk: 0 };
    const cpuOf = async (child: ServerChild) => (await child.ask('stats')).cpuUs;
    const rounds = 2;
    for (let r = 0; r < rounds; r++) {
      const b0 = await cpuOf(bareChild);
      const x = await keepAliveLoad({ ...bare, seconds: ctx.seconds });
      const b1 = await cpuOf(bareChild);
      const [s0, r0] = [await cpuOf(a), await redisCpuUs(redis)];
      const y = await keepAliveLoad({ ...one, seconds: ctx.seconds });
      const [s1, r1] = [await cpuOf(a), await redisCpuUs(redis)];
      const z = await two(ctx.seconds);
      sums.bare += x.rps;
      sums.one += y.rps;
      sums.two += z.rps;
      sums.failed += y.failed + z.failed;
      cpu.bareUs += b1 - b0;
      cpu.bareOk += x.ok;
      cpu.serverUs += s1 - s0;
      cpu.redisUs += r1 - r0;
      cpu.oneOk += y.ok;
      const per = (us: number, n: number) => (n > 0 ? (us / n).toFixed(1) : '?');
      ctx.log(
        `  bare ${Math.round(x.rps)} (${per(b1 - b0, x.ok)} µs CPU per request), 1 instance ${Math.round(y.rps)}` +
          ` (${per(s1 - s0, y.ok)} µs + Redis ${per(r1 - r0, y.ok)} µs), 2 instances ${Math.round(z.rps)} req/s`,
      );
    }
    const bareRps = sums.bare / rounds;
    const oneRps = sums.one / rounds;
    const twoRps = sums.two / rounds;
    const cpuPerRequest = {
      bareNodeHttp: cpu.bareUs / Math.max(1, cpu.bareOk),
      callkeeper: cpu.serverUs / Math.max(1, cpu.oneOk),
      redis: cpu.redisUs / Math.max(1, cpu.oneOk),
    };
    ctx.raw.redis = {
      commandsPerKeepAlive: perKeepAlive,
      commands: used,
      keepAlives: run.ok,
      tripsPerKeepAlive,
      trips,
      scriptsPerKeepAlive,
      cpuUsPerRequest: cpuPerRequest,
      bareRps,
      oneRps,
      twoRps,
    };
    const failedNote = sums.failed ? { note: `${fmt.int(sums.failed)} requests failed` } : {};
    return [
      {
        figure: 'Redis round trips per keepAlive (1 instance)',
        measured:
          `${tripsPerKeepAlive.toFixed(2)} (${fmt.int(trips)} socket reads Redis processed for ${fmt.int(run.ok)} keepAlives); ` +
          `${scriptsPerKeepAlive.toFixed(2)} scripts per keepAlive (its own keepalive.lua before the answer; the journal's appends of one turn after it, all in one script call); ` +
          `${perKeepAlive.toFixed(2)} commands counting those the scripts run (${Object.entries(used.by)
            .map(([k, v]) => `${k} ${fmt.int(v)}`)
            .join(', ')})`,
        target: '1 round trip',
        verdict: tripsPerKeepAlive <= 1.05 ? 'met' : 'missed',
        note: 'round trips: total_reads_processed (INFO stats; concurrent requests share reads), background polls (scheduler, dispatcher) included; commands: INFO commandstats',
      },
      {
        figure: 'keepAlive throughput on Redis, 1 instance',
        measured:
          `${fmt.rps(oneRps)} vs bare node:http ${fmt.rps(bareRps)}: ${fmt.ratio(oneRps / bareRps)};` +
          ` CPU per request: callkeeper ${cpuPerRequest.callkeeper.toFixed(1)} µs + redis-server ${cpuPerRequest.redis.toFixed(1)} µs,` +
          ` bare node:http ${cpuPerRequest.bareNodeHttp.toFixed(1)} µs`,
        target: '>= 0.4x bare node:http',
        verdict: oneRps / bareRps >= 0.4 && sums.failed === 0 ? 'met' : 'missed',
        ...failedNote,
      },
      {
        figure: 'keepAlive throughput on Redis, 2 instances on one Redis',
        measured: `${fmt.rps(twoRps)}: ${fmt.ratio(twoRps / bareRps)} of bare node:http, ${fmt.ratio(twoRps / oneRps)} of 1 instance`,
        target: 'reported (2 cores: the instances, Redis and the load generator share them)',
        verdict: sums.failed === 0 ? 'reported' : 'missed',
        ...failedNote,
      },
    ];
  } finally {
    for (const c of children.reverse()) await c.stop();
    await redis.stop();
  }
}

const LIVE = 1_000;
const LEAD_MS = 3_000;

/**
 * Writes calls straight through the store (as the server would create them; a POST each would
 * take minutes): `count` established calls, the i-th with deadline(i).
 */
async function seedRedis(
  url: string,
  count: number,
  createdAt: number,
  deadline: (i: number) => number,
  callbackUri: string,
): Promise<void> {
  // Each create queues its `created` fact; a bound large enough that seeding dead-letters none.
  const store = await RedisStore.open({ url, shards: 8, instanceId: 'bench-seed', outboxBounds: { perCall: 100, total: 1_000_000 } });
  try {
    await store.getOrInitSetting('redisShards', '8');
    const resource = {
      callbackUri,
      requestedModalities: ['audio'],
      mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
    };
    const owner = { appId: DEFAULT_APP.clientId, tenantId: DEFAULT_APP.tenantId };
    for (let from = 1; from <= count; from += 1_000) {
      const batch: Promise<void>[] = [];
      for (let i = from; i < Math.min(from + 1_000, count + 1); i++)
        batch.push(
          store.create({
            id: seededCallId(i),
            owner,
            state: 'established',
            direction: 'outgoing',
            createdAt,
            deadline: deadline(i),
            establishAt: null,
            resource,
          }),
        );
      await Promise.all(batch);
    }
  } finally {
    await store.close();
  }
}

/** 100,000 calls on one deadline on the Redis store: how long until all have ended, keepAlives meanwhile. */
export async function benchRedisMassExpiry(ctx: BenchContext): Promise<Row[]> {
  const redis = await startRedis();
  let child: ServerChild | undefined;
  const figure = `mass expiry on Redis: ${fmt.int(MASS)} calls, one deadline`;
  const target = 'reported (SQLite: <= 2 s); keepAlive p99 meanwhile reported';
  try {
    const deadline = Date.UTC(2030, 0, 1);
    ctx.log(`redis mass expiry: seeding ${fmt.int(MASS + LIVE)} calls`);
    const t0 = performance.now();
    await seedRedis(redis.url, MASS + LIVE, deadline - 45 * 60_000, (i) => (i <= MASS ? deadline : deadline + 3_600_000), ctx.callbackUri);
    ctx.log(`  seeded in ${fmt.s((performance.now() - t0) / 1000)}`);
    child = await startOnRedis(ctx, redis, ['--start-at', String(deadline - LEAD_MS), '--outbox-total', '1000000']);
    const server = child;
    const token = await fetchToken(server.url);
    const during = (async () => {
      while ((await server.ask('stats', 15_000)).now < deadline) await new Promise((r) => setTimeout(r, 20));
      return fixedRateLoad({
        origin: server.url,
        pathFor: seededPaths(MASS + 1, MASS + LIVE),
        headers: { authorization: `Bearer ${token}` },
        rate: 500,
        seconds: 8,
        connections: 16,
      });
    })();
    during.catch(() => {});
    const giveUpAt = Date.now() + LEAD_MS + 60_000;
    let stalled: string | undefined;
    let rep: { lastEndAt: number } | undefined;
    try {
      for (;;) {
        if (Date.now() > giveUpAt) throw new Error('not all had ended 60 s after the deadline');
        const s = await server.ask('stats', 15_000);
        if (s.expired >= MASS) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      rep = await server.ask('expiries', 30_000);
    } catch (err) {
      stalled = err instanceof Error ? err.message : String(err);
    }
    const load = await during.catch(() => undefined);
    const lastMs = rep ? rep.lastEndAt - deadline : Number.NaN;
    ctx.raw.redisMassExpiry = { lastEndedAfterMs: lastMs, stalled, keepAlivesDuring: load };
    const duringText = load
      ? `; keepAlives meanwhile (500/s for 8 s): p50 ${fmt.ms(load.p50Ms)}, p99 ${fmt.ms(load.p99Ms)}${load.failed ? `, ${fmt.int(load.failed)} failed` : ''}`
      : '';
    ctx.log(`  the last ended ${lastMs} ms after the deadline${stalled ? `; ${stalled}` : ''}`);
    if (!rep) return [{ figure, measured: `not all ended${duringText}`, target, verdict: 'missed', note: stalled ?? 'no report' }];
    return [
      {
        figure,
        measured: `all ${fmt.int(MASS)} ended (with their facts queued, in the same scripts), the last ${fmt.s(lastMs / 1000)} after the deadline${duringText}`,
        target,
        verdict: load && load.failed === 0 ? 'reported' : 'missed',
        note: 'seeded through the store, so each call also has its created fact pending',
      },
    ];
  } finally {
    await child?.stop();
    await redis.stop();
  }
}
