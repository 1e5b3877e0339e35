import { join } from 'node:path';
import { REPO, spawnTracked, stopProcess } from './children.js';
import type { BenchContext } from './context.js';
import { health } from './graph-client.js';
import { fmt, type Row } from './table.js';

const RUNS = 3;

/** One start of the real CLI on `dataDir`: ms from spawn to the first 200 from /_callkeeper/health. */
async function startOnce(dataDir: string): Promise<{ ms: number; active: number }> {
  const t0 = performance.now();
  const proc = spawnTracked(
    process.execPath,
    [join(REPO, 'dist/cli/main.js'), 'serve', '--port', '0', '--https-port', '0', '--data', dataDir],
    {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    const base = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('no banner after 60 s')), 60_000);
      proc.once('exit', (code) => reject(new Error(`callkeeper serve exited (${code})`)));
      proc.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /Graph API\s+(http:\/\/\S+)\/v1\.0/.exec(out);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    for (;;) {
      try {
        const { active } = await health(base);
        return { ms: performance.now() - t0, active };
      } catch {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  } finally {
    await stopProcess(proc);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/**
 * `callkeeper serve` (the built CLI, http and https) on a store of 1,000,000 calls: time from
 * spawn until it serves, median of 3 starts, alternating with starts on a 1,000-call store as
 * the reference (what starting costs whatever the store holds).
 */
export async function benchRestart(ctx: BenchContext, smallDir: string, largeDir: string, calls: number): Promise<Row[]> {
  ctx.log(`restart: callkeeper serve on ${fmt.int(calls)} calls and on 1,000 calls, ${RUNS} starts each`);
  const large: { ms: number; active: number }[] = [];
  const small: { ms: number; active: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    small.push(await startOnce(smallDir));
    large.push(await startOnce(largeDir));
  }
  const ms = large.map((r) => r.ms);
  const m = median(ms);
  const ref = median(small.map((r) => r.ms));
  const active = large[0]?.active ?? 0;
  ctx.raw.restart = { large, small };
  ctx.log(`  ${ms.map((x) => `${Math.round(x)} ms`).join(', ')}; 1,000 calls: ${small.map((r) => `${Math.round(r.ms)} ms`).join(', ')}`);
  return [
    {
      figure: `restart with ${fmt.int(calls)} calls on disk`,
      measured:
        `serving ${fmt.s(m / 1000)} after spawn (median of ${RUNS}: ${ms.map((x) => fmt.s(x / 1000)).join(', ')}; health saw ${fmt.int(active)} active);` +
        ` ${fmt.s(ref / 1000)} with 1,000 calls`,
      target: 'serving <= 2 s after start',
      verdict: m <= 2000 && active >= calls * 0.99 ? 'met' : 'missed',
      ...(active < calls * 0.99 ? { note: `only ${active} active calls after start` } : {}),
    },
  ];
}
