import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { fuzz } from '../test/fuzzer.js';
import { forkServer } from './children.js';
import type { BenchContext } from './context.js';
import { fetchToken } from './graph-client.js';
import type { Row } from './table.js';

/**
 * Issue 16: the fuzzer of test/fuzz.test.ts, run longer (20,000 requests per --seconds 5)
 * against a callkeeper child on disk. A crash is the child exiting; RSS is the child's.
 */
export async function benchFuzz(ctx: BenchContext): Promise<Row[]> {
  const requests = Math.round(4_000 * ctx.seconds);
  const dataDir = mkdtempSync(join(ctx.tmp, 'fuzz-'));
  const child = await forkServer('server-child.ts', ['--data', dataDir]);
  let crashed = 0;
  child.proc.once('exit', () => {
    crashed = 1;
  });
  try {
    const token = await fetchToken(child.url);
    const before = (await child.ask('stats')).rss;
    ctx.log(`fuzz: ${requests} seeded requests (seed 16)`);
    const started = Date.now();
    const r = await fuzz(child.url, { seed: 16, requests, token });
    const seconds = (Date.now() - started) / 1000;
    const after = crashed ? Number.NaN : (await child.ask('stats')).rss;
    ctx.raw.fuzz = { ...r, serverErrors: r.serverErrors.slice(0, 20), seconds, rssBefore: before, rssAfter: after };
    const mb = (n: number) => `${Math.round(n / 1024 / 1024)} MB`;
    return [
      {
        figure: 'fuzz (seeded, control API, bodies, ids, token endpoint, raw HTTP)',
        measured: `${r.requests.toLocaleString('en-US')} requests in ${seconds.toFixed(0)} s: ${r.serverErrors.length} 5xx, ${crashed} crashes (${r.notImplemented} 501 NotImplemented by design, ${r.unanswered} connections closed unanswered); RSS ${mb(before)} before, ${crashed ? 'n/a' : mb(after)} after`,
        target: '0 5xx, 0 crashes',
        verdict: r.serverErrors.length === 0 && crashed === 0 ? 'met' : 'missed',
      },
    ];
  } finally {
    if (!crashed) await child.stop();
  }
}
