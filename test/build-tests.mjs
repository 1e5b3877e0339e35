/**
 * Compiles the TypeScript that `npm test` runs (src, test, examples) to JavaScript in
 * .test-build/, one file per file (esbuild, no bundling: imports stay as written), so that the
 * test processes run plain node. Through tsx, every test process (and every worker thread and
 * child a test starts with `--import tsx`) spent about a second of CPU loading the loader and
 * sending each import through its hooks thread; `npm test` starts well over a hundred of them.
 *
 *   node test/build-tests.mjs        (test/run-tests.mjs runs it first when run without tsx)
 *
 * The tree mirrors the repository's (.test-build/test/foo.test.js imports ../src/bar.js), with
 * what the compiled modules read beside them linked back: package.json (type: module, the
 * version the CLI and keeper report), dist (the package's own exports) and the Redis store's
 * Lua scripts. Tests find everything else from test/paths.ts's ROOT, the repository itself.
 * Inline source maps: a stack trace names the .ts line (node --enable-source-maps).
 */
import { mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const OUT = join(ROOT, '.test-build');

/** @param {string} dir @returns {string[]} */
function typescriptUnder(dir) {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' || e.name === 'node_modules' ? [] : typescriptUnder(path);
    return /\.m?ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Builds .test-build afresh; resolves with the number of files and the milliseconds it took. */
export async function buildTests() {
  const started = performance.now();
  const entryPoints = ['src', 'test', 'examples'].flatMap(typescriptUnder).map((f) => join(ROOT, f));
  rmSync(OUT, { recursive: true, force: true });
  await build({
    entryPoints,
    outdir: OUT,
    outbase: ROOT,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
    outExtension: { '.js': '.js' },
  });
  /** @param {string} at @param {string} target */
  const link = (at, target) => {
    mkdirSync(join(OUT, at, '..'), { recursive: true });
    symlinkSync(relative(join(OUT, at, '..'), join(ROOT, target)), join(OUT, at));
  };
  link('package.json', 'package.json');
  link('dist', 'dist');
  link('src/store/redis/lua', 'src/store/redis/lua');
  return { files: entryPoints.length, ms: performance.now() - started };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { files, ms } = await buildTests();
  process.stdout.write(`compiled ${files} files to ${relative(process.cwd(), OUT) || '.'} in ${(ms / 1000).toFixed(1)} s\n`);
}
