import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { spawnServe } from './cli-process.js';
import { callBody, tempDir } from './helpers.js';

const MINUTE = 60_000;

const post = (base: string, path: string, body: unknown) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('one server per --data directory; its virtual time survives restarts', () => {
  test('a second server on the same --data refuses to start, with a clear message; after a kill -9 a new one starts', async () => {
    const dir = tempDir();
    const first = await spawnServe(['--data', dir.path, '--no-https']);
    try {
      const second = await spawnServe(['--data', dir.path, '--no-https']).then(
        (s) => {
          s.child.kill('SIGKILL');
          return undefined;
        },
        (err: Error) => err.message,
      );
      assert.ok(second, 'the second server must not start');
      assert.match(second, /is in use by another callkeeper \(pid \d+/);
      assert.match(second, /--store redis/);
      // The first one is unharmed.
      assert.equal((await fetch(`${first.base}/_callkeeper/health`)).status, 200);
    } finally {
      first.child.kill('SIGKILL');
      await first.exited;
    }
    // Its lock file names a process that is gone: the next server takes over.
    const third = await spawnServe(['--data', dir.path, '--no-https']);
    try {
      assert.equal((await fetch(`${third.base}/_callkeeper/health`)).status, 200);
    } finally {
      third.child.kill('SIGTERM');
      await third.exited;
      dir.remove();
    }
  });

  test('restarting after clock/advance keeps the virtual time (it never goes back)', async () => {
    const dir = tempDir();
    let s = await spawnServe(['--data', dir.path, '--no-https', '--time-scale', '60']);
    try {
      const advanced = (await (await post(s.base, '/_callkeeper/clock/advance', { ms: '2h' })).json()) as { epochMs: number };
      s.child.kill('SIGTERM');
      await s.exited;
      s = await spawnServe(['--data', dir.path, '--no-https', '--time-scale', '60']);
      const after = (await (await fetch(`${s.base}/_callkeeper/clock`)).json()) as { epochMs: number; scale: number };
      assert.ok(after.epochMs >= advanced.epochMs, `after the restart ${after.epochMs} < ${advanced.epochMs} before it`);
      // Not reset either: it is not the wall clock again.
      assert.ok(after.epochMs >= Date.now() + 2 * 60 * MINUTE - MINUTE);
      // A call created now has at most the 45-minute window left.
      const token = await fetch(`${s.base}/ca11ca11-0000-4000-8000-000000000001/oauth2/v2.0/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: 'ca11ca11-0000-4000-8000-00000000b075',
          client_secret: 'callkeeper-dev-secret',
          scope: 'https://graph.microsoft.com/.default',
        }),
      });
      const { access_token } = (await token.json()) as { access_token: string };
      const call = await fetch(`${s.base}/v1.0/communications/calls`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${access_token}` },
        body: JSON.stringify(callBody()),
      });
      assert.equal(call.status, 201, await call.clone().text());
      const { id } = (await call.json()) as { id: string };
      const view = (await (await fetch(`${s.base}/_callkeeper/calls/${id}`)).json()) as { timeLeftMs: number };
      assert.ok(view.timeLeftMs <= 45 * MINUTE, `timeLeftMs ${view.timeLeftMs}`);
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
      dir.remove();
    }
  });
});
