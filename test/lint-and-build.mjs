/**
 * `npm test`'s first step: `npm run lint` and `npm run build` side by side. Both are mostly one
 * single-threaded tsc each (lint type-checks src, test, bench and examples; build compiles src to
 * dist), so on two cores together they take the time of the longer one. Each one's output is
 * printed whole when it ends (not interleaved); the step fails if either fails.
 */
import { spawn } from 'node:child_process';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const started = performance.now();

/** @param {string} script */
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

const results = await Promise.all([runScript('lint'), runScript('build')]);
if (results.includes(false)) process.exitCode = 1;
