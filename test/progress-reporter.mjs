/**
 * The `npm test` reporter: one line per test file as it ends (files run in parallel, so in the
 * order they end), with its wall time; each failing test with its error as soon as Node reports
 * it; what a test printed itself (lines starting `#`); at the end, the stderr of each failed file
 * and the run's totals. Node's own `spec` reporter prints every test: too much to see progress in.
 *
 * Node announces a file's end (a `test:complete` named by its path) as it happens, but reports
 * the tests inside it later, in bursts, so per-file counts are not known when the file's line is
 * printed; the totals at the end are Node's own.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

/** @param {string | undefined} file */
// A compiled test file (.test-build/test/foo.test.js, test/build-tests.mjs) is named by its source.
// A group of short files (test/run-tests.mjs, groupFiles) is named by its members.
const rel = (file) => {
  if (!file) return '(no file)';
  const path = relative(process.cwd(), file);
  const group = /^\.test-build\/test\/group-\d+\.test\.js$/.test(path) ? groupMembers(file) : undefined;
  if (group) return `test/{${group.join(',')}}.test.ts`;
  return path.replace(/^\.test-build\/(.*)\.js$/, '$1.ts');
};
/** @type {Map<string, string[] | undefined>} */
const groups = new Map();
/** @param {string} file @returns {string[] | undefined} */
function groupMembers(file) {
  if (!groups.has(file)) {
    let members;
    try {
      const first = readFileSync(file, 'utf8').split('\n')[0] ?? '';
      members = first
        .replace(/^.*groupFiles\): /, '')
        .split(', ')
        .map((m) => m.replace(/\.test\.js$/, ''));
    } catch {
      members = undefined;
    }
    groups.set(file, members);
  }
  return groups.get(file);
}
/** @param {number | undefined} ms */
const seconds = (ms) => `${((ms ?? 0) / 1000).toFixed(1)} s`;
/** @param {string[]} lines */
const indent = (lines) => lines.map((l) => `      ${l}`).join('\n');

/** @param {any} err */
function describeError(err) {
  const e = err?.cause ?? err;
  const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
  return indent(text.split('\n').slice(0, 16));
}

/** @param {AsyncIterable<any>} source */
export default async function* progress(source) {
  const started = performance.now();
  let done = 0;
  /** @type {Set<string>} */
  const failedFiles = new Set();
  /** @type {Map<string, string[]>} */
  const stderr = new Map();
  /** @type {string[]} */
  const summary = [];
  for await (const event of source) {
    const data = event.data ?? {};
    const key = rel(data.file);
    const isFile = data.file && data.name === data.file && data.nesting === 0;
    switch (event.type) {
      case 'test:complete': {
        if (!isFile) break;
        done += 1;
        const failed = data.details?.passed === false || data.details?.error !== undefined;
        if (failed) failedFiles.add(key);
        yield `${failed ? '✖' : '✔'} ${key}  ${seconds(data.details?.duration_ms)}  [${done} files, ${seconds(performance.now() - started)}]\n`;
        break;
      }
      case 'test:fail':
        if (isFile || data.details?.type === 'suite') break;
        failedFiles.add(key);
        yield `  ✖ ${key} > ${data.name}\n${describeError(data.details?.error)}\n`;
        break;
      case 'test:stdout': {
        const text = data.message ?? '';
        for (const l of text.split('\n')) if (l.startsWith('#')) yield `  ${key} ${l}\n`;
        break;
      }
      case 'test:stderr':
        // Shown only for a file that failed: passing files' own logging is noise.
        if (data.message) stderr.set(key, [...(stderr.get(key) ?? []), data.message]);
        break;
      case 'test:diagnostic':
        // The run's totals (tests, pass, fail, duration) come as diagnostics with no file.
        if (data.nesting === 0 && data.message && !data.file) summary.push(data.message);
        break;
      default:
        break;
    }
  }
  for (const key of failedFiles) {
    const lines = (stderr.get(key) ?? []).join('').split('\n').slice(-40);
    if (lines.join('').trim()) yield `\n✖ ${key}: the end of its stderr\n${indent(lines)}\n`;
  }
  const failed = failedFiles.size ? `${failedFiles.size} file(s) failed: ${[...failedFiles].join(', ')}` : 'all files passed';
  yield `\n${summary.join(', ')}\n${failed}; ${done} files in ${seconds(performance.now() - started)}\n`;
}
