/**
 * npm run bench [-- --only throughput,latency,peers,https,scale,restart,lag,mass,redis,redis-mass,keeper,keeper-shared,fuzz] [--seconds 5] [--docs]
 *
 * Every benchmark is bounded in time and loopback-only. Figures are ratios or are measured next
 * to their reference in the same run (the machines are shared and noisy). Prints a markdown
 * table, writes bench/results/bench-<time>.json and latest.json; --docs also rewrites the
 * table in docs/benchmarks.md.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { forkServer, REPO, stopAllStarted } from './children.js';
import type { BenchContext } from './context.js';
import { benchExpiryLag, benchMassExpiry, seedMassStore } from './expiry.js';
import { benchFuzz } from './fuzz-row.js';
import { benchHangingBot } from './hanging.js';
import { benchKeeper, benchKeeperShared } from './keeper-row.js';
import { describeMachine, machineLine } from './machine.js';
import { installPeers, PEERS_DIR } from './peers.js';
import { benchPeers } from './peers-bench.js';
import { benchRedis, benchRedisMassExpiry } from './redis.js';
import { benchRestart } from './restart.js';
import { benchScale, LARGE, seedScaleStores } from './scale.js';
import { markdownTable, type Row } from './table.js';
import { type CallkeeperServer, startCallkeeper } from './targets.js';
import { benchLatency, benchThroughput } from './throughput.js';

const ALL = [
  'throughput',
  'https',
  'latency',
  'hang',
  'peers',
  'scale',
  'restart',
  'lag',
  'mass',
  'redis',
  'redis-mass',
  'keeper',
  'keeper-shared',
  'fuzz',
] as const;
type Bench = (typeof ALL)[number];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    docs: { type: 'boolean', default: false },
  },
});
const only = new Set((values.only ?? ALL.join(',')).split(',').map((s) => s.trim()));
for (const o of only)
  if (!(ALL as readonly string[]).includes(o)) throw new Error(`--only: unknown benchmark '${o}' (known: ${ALL.join(', ')})`);
const wants = (b: Bench) => only.has(b);
const seconds = Number(values.seconds);
if (!(seconds >= 1 && seconds <= 60)) throw new Error('--seconds must be 1 to 60');

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;
// Every call's notifications go to this loopback sink: nothing leaves the machine.
const sink = await forkServer('sink-child.ts');
const ctx: BenchContext = {
  tmp: mkdtempSync(join(tmpdir(), 'callkeeper-bench-')),
  seconds,
  log: (m) => process.stderr.write(`[bench ${elapsed()}] ${m}\n`),
  raw: {},
  callbackUri: `${sink.url}/callbacks`,
  notificationsReceived: async () => (await sink.ask('received')).count,
};
const rows: Row[] = [];
// The scratch directory holds up to ~2 GB of stores: never leave it behind, even on Ctrl-C.
process.once('exit', () => rmSync(ctx.tmp, { recursive: true, force: true }));
const machine = describeMachine();
const command = `npm run bench${values.only ? ` -- --only ${values.only}` : ''}`;

async function main(): Promise<void> {
  ctx.log(`${machineLine(machine)}; scratch ${ctx.tmp}`);
  // Installing the peers is network-bound: let it run while we build and seed, never while measuring.
  const needPeers = wants('peers');
  const installed = needPeers ? installPeers() : Promise.resolve();
  installed.catch(() => {});
  if (needPeers) ctx.log(`installing the peers into ${PEERS_DIR} (in the background)`);
  ctx.log('npm run build');
  await promisify(execFile)('npm', ['run', 'build'], { cwd: REPO });
  const stores = wants('scale') || wants('restart') || wants('lag') ? await seedScaleStores(ctx) : undefined;
  const mass = wants('mass') ? await seedMassStore(ctx) : undefined;
  await installed.then(
    () => needPeers && ctx.log('peers installed'),
    (err: unknown) => ctx.log(`peers could not be installed: ${String(err)}`),
  );

  if (wants('throughput') || wants('https') || wants('latency') || wants('hang') || wants('peers')) {
    const ck = await startCallkeeper(ctx, 'callkeeper', 1_000);
    if (wants('throughput') || wants('https')) {
      const figures = [...(wants('throughput') ? ['keepAlive throughput'] : []), ...(wants('https') ? ['https (TLS) throughput'] : [])];
      await guarded(figures, 180, async () => {
        let tls: CallkeeperServer | { pending: string } = { pending: 'not selected' };
        if (wants('https')) {
          try {
            tls = await startCallkeeper(ctx, 'callkeeper https', 1_000, ['--tls']);
          } catch (err) {
            tls = { pending: `could not serve TLS: ${String(err).split('\n')[0]}` };
          }
        }
        const r = await benchThroughput(ctx, ck, tls);
        if ('child' in tls) await tls.child.stop();
        return r.rows.filter((row) => figures.includes(row.figure));
      });
    }
    if (wants('latency')) await guarded(['latency'], 90, () => benchLatency(ctx, ck));
    if (wants('hang')) await guarded(['keepAlive while a bot hangs on its notifications'], 120, () => benchHangingBot(ctx, ck));
    if (wants('peers')) await guarded(['vs peers'], 300, () => benchPeers(ctx, ck.target, installed));
    await ck.child.stop();
  }
  if (stores && wants('scale')) await guarded(['scale'], 150, () => benchScale(ctx, stores));
  if (stores && wants('restart')) await guarded(['restart'], 90, () => benchRestart(ctx, stores.small, stores.large, LARGE));
  if (mass) await guarded(['mass expiry'], 120, () => benchMassExpiry(ctx, mass));
  if (stores && wants('lag')) await guarded(['expiry lag'], 150, () => benchExpiryLag(ctx, stores, LARGE));
  if (wants('redis'))
    await guarded(
      [
        'Redis commands per keepAlive (1 instance)',
        'keepAlive throughput on Redis, 1 instance',
        'keepAlive throughput on Redis, 2 instances on one Redis',
      ],
      150,
      () => benchRedis(ctx),
    );
  if (wants('redis-mass')) await guarded(['mass expiry on Redis'], 150, () => benchRedisMassExpiry(ctx));
  if (wants('keeper')) await guarded(['keeper'], 330, () => benchKeeper(ctx));
  if (wants('keeper-shared')) await guarded(['keeper fleet: 3 replicas on one Redis'], 180, () => benchKeeperShared(ctx));
  if (wants('fuzz')) await guarded(['fuzz (seeded, control API, bodies, ids, token endpoint, raw HTTP)'], 300, () => benchFuzz(ctx));
}

/**
 * Runs one benchmark within its time budget. One that fails or overruns becomes a row saying
 * so, its processes are stopped, and the run goes on.
 */
async function guarded(figures: string[], budgetSeconds: number, fn: () => Promise<Row[]>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const work = fn();
  work.catch(() => {});
  try {
    const overrun = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish within its ${budgetSeconds} s budget`)), budgetSeconds * 1000);
    });
    rows.push(...(await Promise.race([work, overrun])));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    ctx.log(`${figures.join(', ')}: ${reason}`);
    await stopAllStarted([sink.proc]);
    for (const figure of figures) rows.push({ figure, measured: 'not measured', target: '-', verdict: 'missed', note: reason });
  } finally {
    clearTimeout(timer);
  }
}

function report(error?: unknown): void {
  const totalSeconds = (Date.now() - started) / 1000;
  if (error) rows.push({ figure: 'bench run', measured: 'aborted', target: '-', verdict: 'missed', note: String(error) });
  const table = markdownTable(rows);
  const when = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  process.stdout.write(`\n${table}\n\nMachine: ${machineLine(machine)}. Command: \`${command}\`. Total ${totalSeconds.toFixed(0)} s.\n`);
  const result = { when, command, machine, totalSeconds, seconds, rows, raw: ctx.raw };
  const dir = join(REPO, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const json = `${JSON.stringify(result, null, 2)}\n`;
  writeFileSync(join(dir, `bench-${when.replace(/[:]/g, '-')}.json`), json);
  writeFileSync(join(dir, 'latest.json'), json);
  if (values.docs) {
    const docs = join(REPO, 'docs', 'benchmarks.md');
    const block = [
      '<!-- bench:begin (written by npm run bench -- --docs) -->',
      `Run ${when} on ${machineLine(machine)}; \`${command}\` took ${totalSeconds.toFixed(0)} s.`,
      '',
      table,
      '<!-- bench:end -->',
    ].join('\n');
    const text = readFileSync(docs, 'utf8');
    const updated = text.replace(/<!-- bench:begin[\s\S]*?<!-- bench:end -->/, block);
    if (updated === text && !text.includes(block))
      throw new Error('docs/benchmarks.md has no <!-- bench:begin --> ... <!-- bench:end --> block');
    writeFileSync(docs, updated);
    ctx.log('docs/benchmarks.md updated');
  }
}

try {
  await main();
  report();
} catch (err) {
  ctx.log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  report(err);
  process.exitCode = 1;
} finally {
  await sink.stop();
  rmSync(ctx.tmp, { recursive: true, force: true });
}
