/**
 * The keeper at 100,000 calls: CPU, memory and how evenly the sends are spread.
 *
 *   node --import tsx bench/keeper.ts [--calls 100000] [--virtual-minutes 30] [--real-seconds 120] [--warmup-seconds 20]
 *
 * The keepAlives go over real HTTP to a minimal responder (200, empty body) in a child process,
 * and each phase runs in a process of its own (bench/keeper-phase.mjs), so CPU time and RSS are
 * the keeper's alone: scheduling, undici, events, and Node itself. The phases run the built
 * keeper (dist/, on plain Node, no tsx), as a bot runs it in production; `npm run bench` builds it.
 *   1. Virtual time (ManualClock): `--virtual-minutes` of keepAlives for every call, stepped a
 *      second at a time. Gives the spread (busiest second vs mean) and the CPU cost per keepAlive.
 *   2. Real time (the wall clock): the same number of calls for `--real-seconds`, after
 *      `--warmup-seconds` of warm-up. Gives CPU % and RSS as a bot would see them; the CPU of
 *      each 10 s window is reported beside the whole run's, to show how steady the figure is.
 * Prints a markdown table; writes bench/results/keeper.json (read by the main bench).
 * BENCH_CPU_PROF=<dir> makes each phase write a V8 CPU profile there.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '100000' },
    'virtual-minutes': { type: 'string', default: '30' },
    'real-seconds': { type: 'string', default: '120' },
    'warmup-seconds': { type: 'string', default: '20' },
  },
});
const CALLS = Number(values.calls);
const VIRTUAL_MS = Number(values['virtual-minutes']) * 60_000;
const REAL_MS = Number(values['real-seconds']) * 1000;
const WARMUP_MS = Number(values['warmup-seconds']) * 1000;
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

interface Spread {
  max: number;
  mean: number;
}

/** What bench/keeper-phase.mjs reports for the virtual run. */
interface VirtualResult {
  sends: number;
  failed: number;
  spread: Spread;
  cpuMs: number;
  wallMs: number;
  cpuPerSendUs: number;
  projectedCpuPercent: number;
  trackMs: number;
  heapPerCallBytes: number;
  peakRssMB: number;
}

interface Memory {
  rssMB: number;
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
}

/** What bench/keeper-phase.mjs reports for the real-time run. */
interface RealResult {
  sends: number;
  failed: number;
  spread: Spread;
  cpuPercent: number;
  cpuPerSendUs: number;
  windows: { cpuPercent: number; sends: number }[];
  windowCpuPercent: { min: number; median: number; max: number };
  rssMB: number;
  baselineRssMB: number;
  memory: { baseline: Memory; tracked: Memory; end: Memory };
  heapMB: number;
  loopLagMs: number;
}

/** BENCH_CPU_PROF=<dir>: each phase writes a V8 CPU profile there (bench/profile-summary.ts reads it). */
function profileFlags(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
}

/** Runs one phase in a fresh process: bench/keeper-phase.mjs on plain Node, the built keeper in dist/. */
async function phase<T>(name: 'virtual' | 'real', url: string): Promise<T> {
  const args = [...profileFlags(), fileURLToPath(new URL('./keeper-phase.mjs', import.meta.url)), '--phase', name, '--url', url];
  args.push('--calls', String(CALLS), '--virtual-minutes', String(VIRTUAL_MS / 60_000));
  args.push('--real-seconds', String(REAL_MS / 1000), '--warmup-seconds', String(WARMUP_MS / 1000));
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
      [
        'CPU, real time (keeper + HTTP client)',
        `${r.cpuPercent.toFixed(2)}% of a core over ${REAL_MS / 1000} s (${r.cpuPerSendUs.toFixed(0)} µs per keepAlive); 10 s windows: min ${r.windowCpuPercent.min.toFixed(2)}%, median ${r.windowCpuPercent.median.toFixed(2)}%, max ${r.windowCpuPercent.max.toFixed(2)}%`,
      ],
      [
        'CPU, projected from the virtual run',
        `${v.projectedCpuPercent.toFixed(2)}% of a core (${v.cpuPerSendUs.toFixed(0)} µs per keepAlive)`,
      ],
      [
        'RSS, peak',
        `${r.rssMB.toFixed(0)} MB real-time run (${r.baselineRssMB.toFixed(0)} MB before tracking; at the end heap ${r.memory.end.heapUsedMB.toFixed(0)} MB used of ${r.memory.end.heapTotalMB.toFixed(0)} MB), ${v.peakRssMB.toFixed(0)} MB in the compressed virtual run`,
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
        note: `HTTP to a bare responder in another process; ${VIRTUAL_MS / 60_000} virtual minutes, then ${REAL_MS / 1000} s of real time after ${WARMUP_MS / 1000} s of warm-up, each in a fresh process running the built keeper (dist/) on plain Node, as in production (no tsx); RSS includes Node itself (${r.baselineRssMB.toFixed(0)} MB before tracking)`,
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

await main();
