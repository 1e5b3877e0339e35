/**
 * The keeper at 100,000 calls: CPU, memory and how evenly the sends are spread.
 *
 *   node --import tsx bench/keeper.ts [--calls 100000] [--virtual-minutes 30] [--real-seconds 60]
 *
 * The keepAlives go over real HTTP to a minimal responder (200, empty body) in a child process,
 * and each phase runs in a process of its own, so CPU time and RSS are the keeper's alone
 * (scheduling, undici, events; plus Node and tsx themselves).
 *   1. Virtual time (ManualClock): `--virtual-minutes` of keepAlives for every call, stepped a
 *      second at a time. Gives the spread (busiest second vs mean) and the CPU cost per keepAlive.
 *   2. Real time (the wall clock): the same number of calls for `--real-seconds`, after 30 s
 *      of warm-up. Gives CPU % and RSS as a bot would see them.
 * Prints a markdown table; writes bench/results/keeper.json (read by the main bench).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Agent } from 'undici';
import { ManualClock, ScaledClock } from '../src/clock/clock.js';
import { KeepAlive } from '../src/keeper/keep-alive.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '100000' },
    'virtual-minutes': { type: 'string', default: '30' },
    'real-seconds': { type: 'string', default: '60' },
    /** Internal: run one phase against the responder at `url` and print its result as JSON. */
    phase: { type: 'string' },
    url: { type: 'string' },
  },
});
const CALLS = Number(values.calls);
const VIRTUAL_MS = Number(values['virtual-minutes']) * 60_000;
const REAL_MS = Number(values['real-seconds']) * 1000;
const WARMUP_MS = 30_000;
const INTERVAL = 15 * 60_000;
const MB = 2 ** 20;

const RESPONDER = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '0' }); res.end(); });
});
server.keepAliveTimeout = 120000;
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

async function startResponder(): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['-e', RESPONDER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(proc.stdout ?? proc, 'data')) as [Buffer];
  return { url: `http://127.0.0.1:${chunk.toString().trim()}`, proc };
}

function callIds(n: number): string[] {
  // Graph call ids are GUIDs; the responder does not care which.
  return Array.from({ length: n }, (_, i) => `${i.toString(16).padStart(8, '0')}-1111-4222-8333-444455556666`);
}

interface Spread {
  max: number;
  mean: number;
}

function spread(times: Float64Array, count: number, from: number, to: number): Spread {
  const bins = new Uint32Array(Math.ceil((to - from) / 1000));
  let total = 0;
  for (let i = 0; i < count; i++) {
    const b = Math.floor(((times[i] as number) - from) / 1000);
    if (b >= 0 && b < bins.length) {
      bins[b] = (bins[b] ?? 0) + 1;
      total += 1;
    }
  }
  let max = 0;
  for (const n of bins) if (n > max) max = n;
  return { max, mean: total / bins.length };
}

function recorder(keeper: KeepAlive, capacity: number) {
  const times = new Float64Array(capacity);
  const r = { times, count: 0, failed: 0 };
  keeper.on('sent', (e) => {
    if (r.count < capacity) times[r.count] = e.sentAt;
    r.count += 1;
  });
  keeper.on('attemptFailed', () => {
    r.failed += 1;
  });
  return r;
}

/** Phase 1: virtual time. */
async function virtualRun(url: string) {
  const clock = new ManualClock();
  const dispatcher = new Agent({ connections: 64 });
  const keeper = new KeepAlive({ baseUrl: `${url}/v1.0`, getToken: async () => 'bench-token', clock, dispatcher });
  const rec = recorder(keeper, Math.ceil(CALLS * (VIRTUAL_MS / INTERVAL + 1)));
  const ids = callIds(CALLS);
  const heapBefore = process.memoryUsage().heapUsed;
  const trackStart = performance.now();
  for (const id of ids) keeper.track(id);
  const trackMs = performance.now() - trackStart;
  const heapPerCall = (process.memoryUsage().heapUsed - heapBefore) / CALLS;
  const t0 = clock.now();
  const cpu = process.cpuUsage();
  const wall = performance.now();
  let peakRss = 0;
  // Time stands still while a step's sends complete, so each keeps the time it was due at.
  for (let t = 0; t < VIRTUAL_MS; t += 1000) {
    clock.advance(1000);
    await keeper.whenIdle();
    if (t % 60_000 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  const used = process.cpuUsage(cpu);
  const wallMs = performance.now() - wall;
  await keeper.close();
  await dispatcher.close();
  const cpuMs = (used.user + used.system) / 1000;
  return {
    sends: rec.count,
    failed: rec.failed,
    spread: spread(rec.times, Math.min(rec.count, rec.times.length), t0, t0 + VIRTUAL_MS),
    cpuMs,
    wallMs,
    cpuPerSendUs: (cpuMs * 1000) / Math.max(1, rec.count),
    // The same work at real time is spread over the virtual span it covered.
    projectedCpuPercent: (cpuMs / VIRTUAL_MS) * 100,
    trackMs,
    heapPerCallBytes: heapPerCall,
    peakRssMB: peakRss / MB,
  };
}

/** Phase 2: real time. */
async function realRun(url: string) {
  const baselineRss = process.memoryUsage().rss;
  const clock = new ScaledClock(1);
  const keeper = new KeepAlive({ baseUrl: `${url}/v1.0`, getToken: async () => 'bench-token', clock });
  const rec = recorder(keeper, CALLS);
  for (const id of callIds(CALLS)) keeper.track(id);
  // Let the JIT and the garbage collector settle after tracking 100,000 calls, then measure.
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const counted = rec.count;
  const t0 = clock.now();
  const cpu = process.cpuUsage();
  const wall = performance.now();
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 1000);
  await new Promise((r) => setTimeout(r, REAL_MS));
  clearInterval(sampler);
  const used = process.cpuUsage(cpu);
  const wallMs = performance.now() - wall;
  const lagProbe = performance.now();
  await new Promise((r) => setImmediate(r));
  const loopLagMs = performance.now() - lagProbe;
  await keeper.close();
  const cpuMs = (used.user + used.system) / 1000;
  return {
    sends: rec.count - counted,
    failed: rec.failed,
    spread: spread(rec.times, Math.min(rec.count, rec.times.length), t0, t0 + wallMs),
    cpuPercent: (cpuMs / wallMs) * 100,
    rssMB: peakRss / MB,
    baselineRssMB: baselineRss / MB,
    heapMB: process.memoryUsage().heapUsed / MB,
    loopLagMs,
  };
}

type VirtualResult = Awaited<ReturnType<typeof virtualRun>>;
type RealResult = Awaited<ReturnType<typeof realRun>>;

/** Runs one phase in a fresh process: this script again, with --phase. */
async function phase<T>(name: 'virtual' | 'real', url: string): Promise<T> {
  const args = ['--import', 'tsx', new URL(import.meta.url).pathname, '--phase', name, '--url', url];
  args.push('--calls', String(CALLS), '--virtual-minutes', String(VIRTUAL_MS / 60_000), '--real-seconds', String(REAL_MS / 1000));
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const [code] = (await once(proc, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`the ${name} phase exited with ${code}`);
  return JSON.parse(out.trim().split('\n').pop() ?? '') as T;
}

async function main(): Promise<void> {
  const { url, proc } = await startResponder();
  try {
    process.stdout.write(`keeper bench: ${CALLS.toLocaleString('en-US')} calls, interval 15 min, ${cpus().length} cores\n`);
    const v = await phase<VirtualResult>('virtual', url);
    process.stdout.write(`  virtual: ${v.sends} keepAlives in ${(v.wallMs / 1000).toFixed(1)} s wall\n`);
    const r = await phase<RealResult>('real', url);
    process.stdout.write(`  real time: ${r.sends} keepAlives in ${REAL_MS / 1000} s\n`);

    const ratio = v.spread.max / v.spread.mean;
    const realRatio = r.spread.mean > 0 ? r.spread.max / r.spread.mean : 0;
    const ok = r.cpuPercent <= 2 && r.rssMB <= 150 && ratio <= 2 && v.failed === 0 && r.failed === 0;
    const rows: [string, string][] = [
      ['CPU, real time (keeper + HTTP client)', `${r.cpuPercent.toFixed(2)}% of a core`],
      [
        'CPU, projected from the virtual run',
        `${v.projectedCpuPercent.toFixed(2)}% of a core (${v.cpuPerSendUs.toFixed(0)} µs per keepAlive)`,
      ],
      [
        'RSS, peak',
        `${r.rssMB.toFixed(0)} MB real-time run (${r.baselineRssMB.toFixed(0)} MB before tracking), ${v.peakRssMB.toFixed(0)} MB in the compressed virtual run`,
      ],
      ['heap per tracked call', `${v.heapPerCallBytes.toFixed(0)} bytes`],
      ['track() 100,000 calls', `${v.trackMs.toFixed(0)} ms`],
      ['sends per second, virtual run', `max ${v.spread.max}, mean ${v.spread.mean.toFixed(1)} (max/mean ${ratio.toFixed(2)})`],
      ['sends per second, real-time run', `max ${r.spread.max}, mean ${r.spread.mean.toFixed(1)} (max/mean ${realRatio.toFixed(2)})`],
      ['failed attempts', `${v.failed + r.failed}`],
    ];
    const table = ['| keeper, 100,000 calls | measured |', '|---|---|', ...rows.map(([k, m]) => `| ${k} | ${m} |`)].join('\n');
    process.stdout.write(`\n${table}\n`);

    const measured =
      `${r.cpuPercent.toFixed(2)}% CPU at real time (${v.projectedCpuPercent.toFixed(2)}% projected from virtual), ` +
      `${r.rssMB.toFixed(0)} MB RSS, max/mean per-second sends ${ratio.toFixed(2)} (${v.spread.max}/${v.spread.mean.toFixed(1)})`;
    const result = {
      row: {
        figure: `keeper: ${CALLS.toLocaleString('en-US')} tracked calls at the 15-minute cadence`,
        measured,
        target: '<= 2% of a core, <= 150 MB, max/mean per-second sends <= 2',
        verdict: ok ? 'met' : 'missed',
        note: `HTTP to a bare responder in another process; ${VIRTUAL_MS / 60_000} virtual minutes, then ${REAL_MS / 1000} s of real time, each in a fresh process; RSS includes Node and tsx (about 70 MB before the keeper)`,
      },
      calls: CALLS,
      virtual: v,
      real: r,
    };
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(new URL('./results/keeper.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    proc.kill('SIGTERM');
  }
}

if (values.phase === 'virtual' && values.url) process.stdout.write(`${JSON.stringify(await virtualRun(values.url))}\n`);
else if (values.phase === 'real' && values.url) process.stdout.write(`${JSON.stringify(await realRun(values.url))}\n`);
else await main();
