/**
 * Shared keeping (issue 13): three keeper replicas, each in its own process, sharing one Redis,
 * keeping 100,000 calls tracked on one of them. CPU per keepAlive on each replica and Redis
 * commands per keepAlive (INFO commandstats around the measured window).
 *
 *   node --import tsx bench/keeper-shared.ts [--calls 100000] [--scale 5] [--seconds 20]
 *
 * Time runs `--scale` times faster than the wall clock in every replica (one shared origin, so
 * they agree on the time): one 15-minute interval takes 30 s at 30x, every call is kept alive
 * about once in the window, and leases (60 s) and syncs (15 s) keep their proportion to it.
 * CPU at real time is projected from CPU per keepAlive at the real cadence (calls / 15 min).
 * The keepAlives go over real HTTP to a minimal responder (200, empty body) in another process.
 * Writes bench/results/keeper-shared.json; the main bench reads its row.
 */
import { type ChildProcess, execFile, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs, promisify } from 'node:util';
import { Redis } from 'ioredis';
import { Agent } from 'undici';
import { ScaledClock } from '../src/clock/clock.js';
import { KeepAlive } from '../src/keeper/keep-alive.js';
import { startRedis } from '../test/redis-server.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '100000' },
    scale: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '20' },
    /** Internal: run one replica. */
    replica: { type: 'string' },
    redis: { type: 'string' },
    url: { type: 'string' },
    origin: { type: 'string' },
    track: { type: 'boolean', default: false },
  },
});
const CALLS = Number(values.calls);
const SCALE = Number(values.scale);
const SECONDS = Number(values.seconds);
const INTERVAL = 15 * 60_000;
const REPLICAS = ['A', 'B', 'C'];
const MB = 2 ** 20;

type ToReplica = { type: 'mark' } | { type: 'report' } | { type: 'close' };
type FromReplica =
  | { type: 'ready' }
  | { type: 'tracked'; ms: number }
  | { type: 'marked' }
  | { type: 'report'; sends: number; failed: number; cpuMs: number; wallMs: number; rssMB: number; held: number };

const RESPONDER = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '0' }); res.end(); });
});
server.keepAliveTimeout = 120000;
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

async function replicaMain(name: string, redisUrl: string, url: string, origin: number): Promise<void> {
  const send = (m: FromReplica) => process.send?.(m);
  const w = Date.now();
  const clock = new ScaledClock(SCALE, Date.now, origin + (w - origin) * SCALE);
  const redis = new Redis(redisUrl);
  const dispatcher = new Agent({ connections: 64 });
  const keeper = new KeepAlive({
    baseUrl: `${url}/v1.0`,
    getToken: async () => 'bench-token',
    clock,
    dispatcher,
    replicaId: name,
    shared: { redis, namespace: 'bench' },
  });
  let sends = 0;
  let failed = 0;
  keeper.on('sent', () => {
    sends++;
  });
  keeper.on('attemptFailed', () => {
    failed++;
  });
  let mark = { sends: 0, failed: 0, cpu: process.cpuUsage(), wall: performance.now() };
  process.on('message', async (m: ToReplica) => {
    if (m.type === 'mark') {
      mark = { sends, failed, cpu: process.cpuUsage(), wall: performance.now() };
      send({ type: 'marked' });
    } else if (m.type === 'report') {
      const used = process.cpuUsage(mark.cpu);
      send({
        type: 'report',
        sends: sends - mark.sends,
        failed: failed - mark.failed,
        cpuMs: (used.user + used.system) / 1000,
        wallMs: performance.now() - mark.wall,
        rssMB: process.memoryUsage().rss / MB,
        held: keeper.size,
      });
    } else if (m.type === 'close') {
      await keeper.close();
      await dispatcher.close();
      redis.disconnect();
      process.exit(0);
    }
  });
  send({ type: 'ready' });
  if (values.track) {
    // Let the other replicas join the live set first (as a fleet would be, before calls come).
    await new Promise((r) => setTimeout(r, 2_000));
    const t0 = performance.now();
    for (let i = 0; i < CALLS; i++) keeper.track(`${i.toString(16).padStart(8, '0')}-1111-4222-8333-444455556666`);
    send({ type: 'tracked', ms: performance.now() - t0 });
  }
}

interface Child {
  proc: ChildProcess;
  next(type: FromReplica['type'], timeoutMs?: number): Promise<FromReplica>;
}

function startReplica(name: string, redisUrl: string, url: string, origin: number): Child {
  const args = ['--replica', name, '--redis', redisUrl, '--url', url, '--origin', String(origin)];
  args.push('--calls', String(CALLS), '--scale', String(SCALE), ...(name === 'A' ? ['--track'] : []));
  const proc = fork(new URL(import.meta.url).pathname, args, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const inbox: FromReplica[] = [];
  const waiting: { type: string; resolve: (m: FromReplica) => void }[] = [];
  proc.on('message', (m: FromReplica) => {
    const i = waiting.findIndex((w) => w.type === m.type);
    if (i >= 0) waiting.splice(i, 1)[0]?.resolve(m);
    else inbox.push(m);
  });
  return {
    proc,
    next(type, timeoutMs = 120_000) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0] as FromReplica);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`replica ${name}: no ${type} within ${timeoutMs} ms`)), timeoutMs);
        waiting.push({
          type,
          resolve: (m) => {
            clearTimeout(t);
            resolve(m);
          },
        });
      });
    },
  };
}

async function commands(port: number): Promise<number> {
  const { stdout } = await promisify(execFile)('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'INFO', 'commandstats'], {
    timeout: 30_000,
  });
  let total = 0;
  for (const m of stdout.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') total += Number(m[2]);
  return total;
}

async function main(): Promise<void> {
  const responder = spawn(process.execPath, ['-e', RESPONDER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const redis = await startRedis();
  const children: Child[] = [];
  try {
    const [chunk] = (await once(responder.stdout ?? responder, 'data')) as [Buffer];
    const url = `http://127.0.0.1:${chunk.toString().trim()}`;
    const origin = Date.now();
    process.stdout.write(`keeper shared bench: ${CALLS.toLocaleString('en-US')} calls, 3 replicas on one Redis, time ${SCALE}x\n`);
    for (const name of REPLICAS) children.push(startReplica(name, redis.url, url, origin));
    for (const c of children) await c.next('ready');
    const tracked = (await children[0]?.next('tracked')) as Extract<FromReplica, { type: 'tracked' }>;
    // Warm-up: tracking, and the fleet settling (leases handed out, first sends spread).
    await new Promise((r) => setTimeout(r, 20_000));
    for (const c of children) c.proc.send({ type: 'mark' } satisfies ToReplica);
    for (const c of children) await c.next('marked');
    const before = await commands(redis.port);
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const after = await commands(redis.port);
    for (const c of children) c.proc.send({ type: 'report' } satisfies ToReplica);
    const reports = [] as Extract<FromReplica, { type: 'report' }>[];
    for (const c of children) reports.push((await c.next('report')) as Extract<FromReplica, { type: 'report' }>);
    const sends = reports.reduce((n, r) => n + r.sends, 0);
    const failed = reports.reduce((n, r) => n + r.failed, 0);
    const cpuMs = reports.reduce((n, r) => n + r.cpuMs, 0);
    const perSendUs = (cpuMs * 1000) / Math.max(1, sends);
    // At real time the fleet sends calls / 15 min keepAlives a second, shared by the replicas.
    const realRate = CALLS / (INTERVAL / 1000);
    const projectedFleetPercent = ((perSendUs * realRate) / 1e6) * 100;
    const commandsPerSend = (after - before) / Math.max(1, sends);
    const held = reports.map((r) => r.held);
    const table = [
      '| replica | keepAlives in the window | CPU | CPU per keepAlive | RSS | calls held |',
      '|---|---|---|---|---|---|',
      ...reports.map(
        (r, i) =>
          `| ${REPLICAS[i]} | ${r.sends} | ${((r.cpuMs / r.wallMs) * 100).toFixed(1)}% at ${SCALE}x | ${((r.cpuMs * 1000) / Math.max(1, r.sends)).toFixed(0)} µs | ${r.rssMB.toFixed(0)} MB | ${r.held} |`,
      ),
    ].join('\n');
    process.stdout.write(`\n${table}\n`);
    const measured =
      `${commandsPerSend.toFixed(2)} Redis commands per keepAlive (${(after - before).toLocaleString('en-US')} for ${sends.toLocaleString('en-US')}); ` +
      `${perSendUs.toFixed(0)} µs CPU per keepAlive over the 3 replicas, ${projectedFleetPercent.toFixed(2)}% of a core for the fleet at real time; ` +
      `calls held ${held.join(' / ')} (of ${CALLS.toLocaleString('en-US')}; buckets still moving count on neither); peak RSS ${Math.max(...reports.map((r) => r.rssMB)).toFixed(0)} MB; track() of all on A ${tracked.ms.toFixed(0)} ms`;
    const result = {
      row: {
        figure: `keeper fleet: 3 replicas on one Redis, ${CALLS.toLocaleString('en-US')} calls`,
        measured,
        target: 'reported (CPU and Redis commands per keepAlive)',
        verdict: failed === 0 ? 'reported' : 'missed',
        note: `time at ${SCALE}x for ${SECONDS} s (${((SECONDS * SCALE) / 60).toFixed(0)} virtual minutes); commands include lease renewals and syncs${failed ? `; ${failed} attempts failed` : ''}`,
      },
      calls: CALLS,
      scale: SCALE,
      seconds: SECONDS,
      sends,
      failed,
      commands: after - before,
      reports,
      trackMs: tracked.ms,
    };
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(new URL('./results/keeper-shared.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    for (const c of children) c.proc.send({ type: 'close' } satisfies ToReplica);
    await Promise.all(
      children.map((c) =>
        c.proc.exitCode === null ? Promise.race([once(c.proc, 'exit'), new Promise((r) => setTimeout(r, 5_000))]) : Promise.resolve(),
      ),
    );
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    responder.kill('SIGTERM');
    await redis.stop();
  }
}

if (values.replica && values.redis && values.url && values.origin)
  await replicaMain(values.replica, values.redis, values.url, Number(values.origin));
else await main();
