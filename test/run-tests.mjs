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
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

/**
 * Files that need a process of their own even though they are short: they change what a process
 * holds for all its tests (process.env, the global dispatcher, signal handlers, the working
 * directory) or measure the process itself. Every other file not in LONGEST_FIRST is run
 * GROUP_SIZE to a process (see groupFiles).
 */
export const OWN_PROCESS = [].map((name) => `test/${name}.test.ts`);

/**
 * Short files share a process, a few at a time: most of such a file's CPU is the process and
 * the modules it loads (an empty test file costs 0.3 s, one that imports the server 1.1 s),
 * not its tests; grouped, the modules load once per group. Small groups, so that the last ones
 * still spread over both cores.
 */
export const GROUP_SIZE = 5;

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

/**
 * The compiled files, with the short ones (neither in LONGEST_FIRST nor in OWN_PROCESS) replaced
 * by group files of GROUP_SIZE each: .test-build/test/group-N.test.js, importing its members in
 * turn (their tests run one file after the other, as in a process of their own; their `after`
 * hooks at the end of the group). The reporter names a group by its members.
 * @param {string[]} files compiled paths, in run order
 * @param {string} out the build directory
 */
export function groupFiles(files, out) {
  const alone = new Set([...LONGEST_FIRST, ...OWN_PROCESS].map((f) => join(out, f.replace(/\.ts$/, '.js'))));
  const short = files.filter((f) => !alone.has(f));
  const groups = [];
  for (let i = 0; i < short.length; i += GROUP_SIZE) groups.push(short.slice(i, i + GROUP_SIZE));
  const grouped = groups.map((members, i) => {
    const file = join(out, 'test', `group-${i + 1}.test.js`);
    const names = members.map((m) => relative(join(out, 'test'), m));
    writeFileSync(
      file,
      `// Written by test/run-tests.mjs (groupFiles): ${names.join(', ')}\n${names.map((n) => `import './${n}';`).join('\n')}\n`,
    );
    return file;
  });
  return [...files.filter((f) => alone.has(f)), ...grouped];
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
    if (named.length === 0) files = groupFiles(files, OUT);
  }
  const concurrency = Number(process.env.CALLKEEPER_TEST_CONCURRENCY ?? 3);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('CALLKEEPER_TEST_CONCURRENCY: a whole number of files, 1 or more');
  process.chdir(ROOT);
  // One signing-key directory for the run: every server that does not test keys itself takes its
  // RSA keys from it (test/helpers.ts startServer, test/cli-process.ts childEnv) instead of
  // making two of its own, 0.1 to 0.6 s of CPU each (docs/decisions.md, "Signing keys of in-memory servers").
  const keyDir = mkdtempSync(join(tmpdir(), 'callkeeper-test-keys-'));
  process.env.CALLKEEPER_TEST_KEY_DIR = keyDir;
  process.once('exit', () => rmSync(keyDir, { recursive: true, force: true }));
  const stream = run({ files, concurrency, timeout: 15 * 60_000, forceExit: true });
  stream.on('test:fail', (data) => {
    if (data.todo === undefined || data.todo === false) process.exitCode = 1;
  });
  stream.compose(progress).pipe(process.stdout);
}
