/**
 * What dist/ was built from: a hash of the build's inputs (every file under src/, the tsconfig,
 * package.json and the asset copier), written to dist/.build-stamp by `npm run build`. `npm test`
 * (test/lint-and-build.mjs) skips its build when the stamp matches the sources: `npm install`
 * has just built them (prepare), and a second tsc of the same sources is 15 s of CPU the tests
 * would wait for. Any change to a source, or a dist/ removed, and the build runs again.
 *
 *   node scripts/build-stamp.mjs write   (the last step of `npm run build`)
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const INPUTS = ['tsconfig.json', 'package.json', 'scripts/copy-assets.mjs', 'scripts/build-stamp.mjs'];

/** @param {string} dir @returns {string[]} */
function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? filesUnder(path) : [path];
  });
}

/** The hash of everything the build of the checkout at `root` reads, paths and contents. */
export function inputsHash(root = ROOT) {
  const hash = createHash('sha256');
  const files = [...filesUnder(join(root, 'src')), ...INPUTS.map((f) => join(root, f))]
    .map((f) => relative(root, f).split('\\').join('/'))
    .sort();
  for (const f of files) {
    hash.update(`${f}\0`);
    hash.update(readFileSync(join(root, f)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

/** Writes the stamp of the sources as they are now into `root`/dist. */
export function writeStamp(root = ROOT) {
  writeFileSync(join(root, 'dist', '.build-stamp'), `${inputsHash(root)}\n`);
}

/** Whether `root`/dist holds a build of the sources as they are now. */
export function distUpToDate(root = ROOT) {
  try {
    return readFileSync(join(root, 'dist', '.build-stamp'), 'utf8').trim() === inputsHash(root);
  } catch {
    return false;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'write') writeStamp();
