/**
 * Runs every test/*.test.ts with node's test runner, as `npm test` and `npm run coverage` do:
 * files in parallel (--test-concurrency), the longest first. Node starts files in the order it
 * is given them, so a long file started last would run alone at the end while the other cores
 * idle; starting the long ones first packs the run. The order is a list measured on a two-core
 * machine (the progress reporter prints each file's time: refresh the list when it drifts); files
 * not in it follow in name order. Arguments are passed on to node (e.g. --test-concurrency=2).
 *
 * CALLKEEPER_TEST_CONCURRENCY overrides the concurrency (default 3: measured best on two cores,
 * since test files wait on child processes, Redis and sockets part of the time).
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The slowest files, slowest first (wall time of each on a busy two-core machine). */
export const LONGEST_FIRST = [
  'keeper-fleet',
  'keeper-shared',
  'keeper-outage',
  'package',
  'store-option',
  'durability',
  'tokens-wall-clock',
  'cli-ready',
  'tls',
  'multi-instance',
  'tls-names',
  'cli-options',
  'single-writer',
  'cli',
  'redis-cluster',
  'official-sdks',
  'token-expire',
  'notifications',
  'official-sdks-operations',
  'permissions-clouds',
  'dashboard',
  'control-guard',
  'ci-recipes',
  'redis-bot-actions',
  'faults-cli',
].map((name) => `test/${name}.test.ts`);

/** Every test file, the listed ones first in the list's order, then the rest by name. */
export function orderedTestFiles() {
  const all = readdirSync(join(ROOT, 'test'))
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => `test/${f}`)
    .sort();
  const rank = (f) => {
    const i = LONGEST_FIRST.indexOf(f);
    return i < 0 ? LONGEST_FIRST.length : i;
  };
  return all.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const concurrency = process.env.CALLKEEPER_TEST_CONCURRENCY ?? '3';
  const args = [
    '--import',
    'tsx',
    '--import',
    './test/loopback-only.mjs',
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-force-exit',
    '--test-timeout=900000',
    '--test-reporter=./test/progress-reporter.mjs',
    ...process.argv.slice(2),
    ...orderedTestFiles(),
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal ? 1 : 0);
  });
}
