// @ts-check
/**
 * One phase of the keeper bench (bench/keeper.ts starts it): the keeper as a bot runs it in
 * production, the built JavaScript in dist/ on plain Node (no tsx), so RSS and CPU are the
 * keeper's and Node's, not a TypeScript loader's. `npm run bench` builds dist/ first.
 *
 *   node bench/keeper-phase.mjs --phase virtual|real --url <responder> [--calls N]
 *     [--virtual-minutes M] [--real-seconds S] [--warmup-seconds W]
 *
 * Prints its result as one line of JSON.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent } from 'undici';

const dist = new URL('../dist/', import.meta.url);
if (!existsSync(new URL('keeper/keep-alive.js', dist)))
  throw new Error('bench/keeper-phase.mjs runs the built keeper: npm run build first');
const { KeepAlive } = await import(new URL('keeper/keep-alive.js', dist).href);
const { ManualClock, ScaledClock } = await import(new URL('clock/clock.js', dist).href);

const { values } = parseArgs({
  options: {
    phase: { type: 'string' },
    url: { type: 'string' },
    calls: { type: 'string', default: '100000' },
    'virtual-minutes': { type: 'string', default: '30' },
    'real-seconds': { type: 'string', default: '120' },
    'warmup-seconds': { type: 'string', default: '30' },
  },
});
const CALLS = Number(values.calls);
const VIRTUAL_MS = Number(values['virtual-minutes']) * 60_000;
const REAL_MS = Number(values['real-seconds']) * 1000;
const WARMUP_MS = Number(values['warmup-seconds']) * 1000;
const INTERVAL = 15 * 60_000;
/** The real-time run is cut into windows this long: their spread says how steady the CPU figure is. */
const WINDOW_MS = 10_000;
const MB = 2 ** 20;

/** @param {number} n */
function callIds(n) {
  // Graph call ids are GUIDs; the responder does not care which.
  return Array.from({ length: n }, (_, i) => `${i.toString(16).padStart(8, '0')}-1111-4222-8333-444455556666`);
}

/**
 * @param {Float64Array} times
 * @param {number} count
 * @param {number} from
 * @param {number} to
 */
function spread(times, count, from, to) {
  const bins = new Uint32Array(Math.ceil((to - from) / 1000));
  let total = 0;
  for (let i = 0; i < count; i++) {
    const b = Math.floor((Number(times[i]) - from) / 1000);
    if (b >= 0 && b < bins.length) {
      bins[b] = (bins[b] ?? 0) + 1;
      total += 1;
    }
  }
  let max = 0;
  for (const n of bins) if (n > max) max = n;
  return { max, mean: total / bins.length };
}

/**
 * @param {InstanceType<typeof KeepAlive>} keeper
 * @param {number} capacity
 */
function recorder(keeper, capacity) {
  const times = new Float64Array(capacity);
  const r = { times, count: 0, failed: 0 };
  keeper.on('sent', (/** @type {{ sentAt: number }} */ e) => {
    if (r.count < capacity) times[r.count] = e.sentAt;
    r.count += 1;
  });
  keeper.on('attemptFailed', () => {
    r.failed += 1;
  });
  return r;
}

function memory() {
  const m = process.memoryUsage();
  return { rssMB: m.rss / MB, heapUsedMB: m.heapUsed / MB, heapTotalMB: m.heapTotal / MB, externalMB: m.external / MB };
}

/** Phase 1: virtual time. */
async function virtualRun(/** @type {string} */ url) {
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
async function realRun(/** @type {string} */ url) {
  const baseline = memory();
  const clock = new ScaledClock(1);
  const keeper = new KeepAlive({ baseUrl: `${url}/v1.0`, getToken: async () => 'bench-token', clock });
  const rec = recorder(keeper, CALLS);
  for (const id of callIds(CALLS)) keeper.track(id);
  const tracked = memory();
  // Let the JIT and the garbage collector settle after tracking 100,000 calls, then measure.
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const counted = rec.count;
  const t0 = clock.now();
  const cpu = process.cpuUsage();
  const wall = performance.now();
  let peakRss = process.memoryUsage().rss;
  /** @type {{ cpuPercent: number, sends: number }[]} */
  const windows = [];
  let wCpu = process.cpuUsage();
  let wAt = performance.now();
  let wSends = rec.count;
  let tick = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    tick += 1;
    if (tick % (WINDOW_MS / 1000) !== 0) return;
    const u = process.cpuUsage(wCpu);
    const at = performance.now();
    windows.push({ cpuPercent: ((u.user + u.system) / 1000 / (at - wAt)) * 100, sends: rec.count - wSends });
    wCpu = process.cpuUsage();
    wAt = at;
    wSends = rec.count;
  }, 1000);
  await new Promise((r) => setTimeout(r, REAL_MS));
  clearInterval(sampler);
  const used = process.cpuUsage(cpu);
  const wallMs = performance.now() - wall;
  const end = memory();
  const lagProbe = performance.now();
  await new Promise((r) => setImmediate(r));
  const loopLagMs = performance.now() - lagProbe;
  await keeper.close();
  const cpuMs = (used.user + used.system) / 1000;
  const sends = rec.count - counted;
  const sorted = windows.map((w) => w.cpuPercent).sort((a, b) => a - b);
  return {
    sends,
    failed: rec.failed,
    spread: spread(rec.times, Math.min(rec.count, rec.times.length), t0, t0 + wallMs),
    cpuPercent: (cpuMs / wallMs) * 100,
    cpuPerSendUs: (cpuMs * 1000) / Math.max(1, sends),
    windows,
    windowCpuPercent: { min: sorted[0] ?? 0, median: sorted[Math.floor(sorted.length / 2)] ?? 0, max: sorted.at(-1) ?? 0 },
    rssMB: peakRss / MB,
    baselineRssMB: baseline.rssMB,
    memory: { baseline, tracked, end },
    heapMB: end.heapUsedMB,
    loopLagMs,
    node: process.version,
  };
}

if (values.phase === 'virtual' && values.url) process.stdout.write(`${JSON.stringify(await virtualRun(values.url))}\n`);
else if (values.phase === 'real' && values.url) process.stdout.write(`${JSON.stringify(await realRun(values.url))}\n`);
else throw new Error('usage: node bench/keeper-phase.mjs --phase virtual|real --url <responder>');
