import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ManualClock } from '../src/clock/clock.js';
import { createCallkeeper } from '../src/server.js';
import { tempDir } from './helpers.js';
import { ROOT } from './paths.js';

// Every server start pays for the modules it loads (about 0.6 s of CPU for the server's own
// before this was looked at, docs/benchmarks.md): those a start does not use are loaded when
// first needed.
describe('what a server start loads', () => {
  test("a SQLite server loads neither ioredis (the Redis store), undici (notification delivery), ajv (schemas) nor @opentelemetry/api (prom-client's default metrics) at start", async () => {
    // A process of its own: test files share processes, and another file may have loaded them.
    const script = `
      import { createRequire } from 'node:module';
      const { createCallkeeper } = await import(${JSON.stringify(`${ROOT}dist/server.js`)});
      const ck = await createCallkeeper({ logger: false });
      await ck.app.ready();
      const health = await ck.app.inject('/_callkeeper/health');
      const loaded = new Set();
      for (const f of Object.keys(createRequire(import.meta.url).cache)) {
        const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(f);
        if (m) loaded.add(m[1]);
      }
      await ck.close();
      process.stdout.write(JSON.stringify({ status: health.statusCode, loaded: [...loaded] }));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
    const { status, loaded } = JSON.parse(stdout) as { status: number; loaded: string[] };
    assert.equal(status, 200);
    // What it does need, so that the list is the real one.
    for (const used of ['fastify', 'better-sqlite3', 'prom-client']) assert.ok(loaded.includes(used), `${used} in ${loaded}`);
    for (const unused of ['ioredis', 'undici', 'ajv', '@fastify/ajv-compiler', '@opentelemetry/api'])
      assert.ok(!loaded.includes(unused), `${unused} loaded`);
  });

  test('an https start that can serve its certificate as it is loads no @peculiar/x509; one that must make one does', async () => {
    const dir = tempDir('callkeeper-start-tls-');
    try {
      // Each start a process of its own, as `callkeeper serve` is.
      const start = async () => {
        const script = `
          import { createRequire } from 'node:module';
          const { loadOrCreateTls } = await import(${JSON.stringify(`${ROOT}dist/tls/certificates.js`)});
          const tls = await loadOrCreateTls(${JSON.stringify(join(dir.path, 'tls'))}, Date.now(), { caKeyDir: ${JSON.stringify(join(dir.path, 'keys'))} });
          const loaded = Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('/node_modules/@peculiar/x509/'));
          process.stdout.write(JSON.stringify({ created: tls.created, cert: tls.cert, loaded }));
        `;
        const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
        return JSON.parse(stdout) as { created: { ca: boolean; cert: boolean }; cert: string; loaded: boolean };
      };
      const first = await start();
      assert.deepEqual(first.created, { ca: true, cert: true });
      assert.equal(first.loaded, true, 'making a CA needs the library');
      const second = await start();
      assert.deepEqual(second.created, { ca: false, cert: false });
      assert.equal(second.cert, first.cert, 'the same certificate is served');
      assert.equal(second.loaded, false, 'reusing it does not load the library');
    } finally {
      dir.remove();
    }
  });

  test('a route with a JSON schema on the app still gets Fastify’s validation (its compilers load when first needed)', async () => {
    const ck = await createCallkeeper({ clock: new ManualClock(), logger: false });
    try {
      ck.app.post(
        '/extra',
        { schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } } } },
        async (req) => req.body,
      );
      const ok = await ck.app.inject({ method: 'POST', url: '/extra', payload: { n: 3 } });
      assert.equal(ok.statusCode, 200);
      assert.deepEqual(ok.json(), { n: 3 });
      const bad = await ck.app.inject({ method: 'POST', url: '/extra', payload: { n: 'three' } });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error.code, 'BadRequest');
    } finally {
      await ck.close();
    }
  });
});
