/**
 * Where things are, for a test file run either way `npm test` may run it: as TypeScript through
 * tsx (test/foo.test.ts, as `node --import tsx --test` and `npm run coverage` run it) or compiled
 * by test/build-tests.mjs (.test-build/test/foo.test.js, as `npm test` runs it: no loader in any
 * process, about a second of CPU less per process). Tests find the repository's files from
 * ROOT, never from their own URL, so both forms read the same README, docs, dist and fixtures.
 */
import { fileURLToPath } from 'node:url';

/** True when this file runs compiled (.test-build/test/paths.js), false under tsx. */
export const COMPILED = import.meta.url.endsWith('.js');

/** The repository root (with a trailing separator). */
export const ROOT = fileURLToPath(new URL(COMPILED ? '../..' : '..', import.meta.url));

/** test/fixtures of the repository. */
export const FIXTURES = `${ROOT}test/fixtures/`;

/**
 * node's arguments to run a TypeScript module of test/ (`sdk-flows/run-flow.ts`) in a child
 * process: the compiled module as it is, or the source through tsx.
 */
export function testModuleArgs(path: string): string[] {
  return COMPILED
    ? [fileURLToPath(new URL(`./${path.replace(/\.ts$/, '.js')}`, import.meta.url))]
    : ['--import', 'tsx', fileURLToPath(new URL(`./${path}`, import.meta.url))];
}

/**
 * The body of a worker thread (`new Worker(..., { eval: true })`) that imports `url`, a module
 * of this checkout: at once when compiled, after registering tsx's loader in the worker otherwise.
 */
export function workerBoot(url: string): string {
  if (COMPILED) return `import(${JSON.stringify(url)})`;
  const tsx = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(url)}); })`;
}
