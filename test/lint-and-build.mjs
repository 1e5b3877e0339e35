/**
 * `npm test`: `npm run lint` beside `npm run build`, and the tests (test/run-tests.mjs) as soon
 * as the build is done, while lint may still run. Lint (biome, then tsc type-checking src, test,
 * bench and examples) and build (tsc compiling src to dist) are mostly one tsc each (TypeScript 7,
 * the native compiler: 6 s of lint instead of 18, 10 s of CPU instead of 27, beside the tests);
 * the tests need dist (the CLI children run it), not lint, so the longest test files (the keeper
 * fleet waits on real time) start a lint's length earlier. Lint's and build's output is
 * printed whole when each ends (not interleaved); the run fails if any of the three fails.
 *
 *   node test/lint-and-build.mjs           lint and build only
 *   node test/lint-and-build.mjs --test    and the tests once the build is done (npm test)
 */
import { spawn } from 'node:child_process';
import { distUpToDate } from '../scripts/build-stamp.mjs';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const started = performance.now();

/** @param {string} script @returns {Promise<boolean>} */
function runScript(script) {
  return new Promise((resolve) => {
    const child = spawn(npm, ['run', '--silent', script], { stdio: ['ignore', 'pipe', 'pipe'], shell: process.platform === 'win32' });
    /** @type {Buffer[]} */
    const out = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => out.push(c));
    child.on('error', (err) => out.push(Buffer.from(`${err.message}\n`)));
    child.on('close', (code, signal) => {
      const ok = code === 0;
      const text = Buffer.concat(out).toString().trimEnd();
      const took = `${((performance.now() - started) / 1000).toFixed(1)} s`;
      process.stdout.write(
        `${ok ? '✔' : '✖'} npm run ${script}  ${took}${ok ? '' : ` (exit ${code ?? signal})`}\n${text ? `${text}\n` : ''}`,
      );
      resolve(ok);
    });
  });
}

/** The test runner, its output straight through, with the loopback guard as `npm test` runs it. */
function runTests() {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', './test/loopback-only.mjs', 'test/run-tests.mjs'], { stdio: 'inherit' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

const lint = runScript('lint');
// `npm install` has just built dist/ (prepare): when its stamp matches the sources, the tests
// start at once instead of after a second tsc of the same files (scripts/build-stamp.mjs).
const build = distUpToDate()
  ? Promise.resolve(process.stdout.write('✔ npm run build  skipped: dist/ is a build of these sources (dist/.build-stamp)\n')).then(
      () => true,
    )
  : runScript('build');
const tests = process.argv.includes('--test') ? build.then((ok) => ok && runTests()) : Promise.resolve(true);
const results = await Promise.all([lint, build, tests]);
if (results.includes(false)) process.exitCode = 1;
