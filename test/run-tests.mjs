/**
 * Runs the test files with node's test runner, as `npm test` and `npm run coverage` do: files in
 * parallel, the longest first, each line of test/progress-reporter.mjs as it comes.
 *
 *   node --import ./test/loopback-only.mjs test/run-tests.mjs [file ...]
 *   node --import tsx --import ./test/loopback-only.mjs test/run-tests.mjs [file ...]
 *
 * Without files: every test/*.test.ts. Run without tsx (as `npm test` does), it first compiles
 * the TypeScript to .test-build/ (test/build-tests.mjs) and runs the compiled files with plain
 * node; run with `--import tsx` (as `npm run coverage` does), the .ts files through tsx. Each file
 * runs in a process of its own started with this process's flags (the loopback guard, which
 * every process a test starts inherits, and tsx when given). Why not `node --test`: it sorts its
 * files by name, whatever order they are given in, and a long file started late runs alone at
 * the end while the other core idles. Here the files
 * named in LONGEST_FIRST start first (measured on a two-core machine; the reporter prints each
 * file's time: refresh the list when it drifts), the rest follow by name.
 *
 * CALLKEEPER_TEST_CONCURRENCY: files at a time (default 3). A test that hangs fails after 15
 * minutes, and a file whose tests are done ends even if something it started is still open
 * (forceExit), so a run always finishes.
 */
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { run } from 'node:test';
import { fileURLToPath } from 'node:url';
import progress from './progress-reporter.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The slowest files, slowest first (CPU and wall time of each on a busy two-core machine). */
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
  /** @param {string} f */
  const rank = (f) => {
    const i = LONGEST_FIRST.indexOf(f);
    return i < 0 ? LONGEST_FIRST.length : i;
  };
  return all.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Whether this process runs TypeScript through tsx (`npm run coverage`) rather than compiled tests. */
const underTsx = process.execArgv.some((a, i, all) => /(^|=)tsx$/.test(a) || (a === '--import' && all[i + 1] === 'tsx'));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const named = process.argv.slice(2);
  let files = (named.length > 0 ? named : orderedTestFiles()).map((f) => resolve(ROOT, f));
  if (!underTsx) {
    const { buildTests, OUT } = await import('./build-tests.mjs');
    const built = await buildTests();
    process.stdout.write(`compiled ${built.files} files to .test-build in ${(built.ms / 1000).toFixed(1)} s\n`);
    files = files.map((f) => join(OUT, relative(ROOT, f).replace(/\.ts$/, '.js')));
  }
  const concurrency = Number(process.env.CALLKEEPER_TEST_CONCURRENCY ?? 3);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('CALLKEEPER_TEST_CONCURRENCY: a whole number of files, 1 or more');
  process.chdir(ROOT);
  const stream = run({ files, concurrency, timeout: 15 * 60_000, forceExit: true });
  stream.on('test:fail', (data) => {
    if (data.todo === undefined || data.todo === false) process.exitCode = 1;
  });
  stream.compose(progress).pipe(process.stdout);
}
