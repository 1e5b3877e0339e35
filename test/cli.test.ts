import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { runCli, spawnServe } from './cli-process.js';
import { callBody, requestToken, tempDir } from './helpers.js';

describe('callkeeper CLI', () => {
  test('serve --help documents every flag', async () => {
    const { code, stdout } = await runCli(['serve', '--help']);
    assert.equal(code, 0);
    for (const flag of [
      '--host',
      '--port',
      '--data',
      '--memory',
      '--keepalive-timeout',
      '--time-scale',
      '--strict',
      '--establish-delay',
      '--body-limit',
      '--log-level',
    ]) {
      assert.ok(stdout.includes(flag), flag);
    }
  });

  test('bad flags fail with a message, not a stack trace', async () => {
    for (const args of [
      ['serve', '--port', 'x'],
      ['serve', '--time-scale', '0'],
      ['serve', '--keepalive-timeout', 'soon'],
      ['serve', '--nope'],
      ['frobnicate'],
    ]) {
      const { code, stderr } = await runCli(args);
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, /^callkeeper: /);
      assert.doesNotMatch(stderr, /\n\s+at /);
    }
  });

  test('the banner prints the URLs, where the data lives and the default app credentials', async () => {
    const dir = tempDir();
    try {
      const p = await spawnServe(['--data', dir.path]);
      const out = p.output();
      assert.match(out, /Graph API\s+http:\/\/127\.0\.0\.1:\d+\/v1\.0/);
      assert.match(out, /Graph API\s+https:\/\/127\.0\.0\.1:\d+\/v1\.0/);
      assert.match(out, /Token\s+https:\/\/127\.0\.0\.1:\d+\/\{tenant\}\/oauth2\/v2\.0\/token/);
      assert.ok(out.includes(`NODE_EXTRA_CA_CERTS=${dir.path}/tls/ca.crt`));
      assert.match(out, /Control API\s+http:\/\/127\.0\.0\.1:\d+\/_callkeeper/);
      assert.ok(out.includes(`${dir.path}/callkeeper.db`));
      for (const v of [DEFAULT_APP.tenantId, DEFAULT_APP.clientId, DEFAULT_APP.clientSecret, 'Calls.AccessMedia.All'])
        assert.ok(out.includes(v), v);
      p.child.kill('SIGINT');
      assert.equal(await p.exited, 0);
    } finally {
      dir.remove();
    }
  });

  test('--time-scale and --keepalive-timeout: virtual time runs faster and the call ends by itself', async () => {
    // 45 virtual minutes pass in 27 ms of wall time.
    const p = await spawnServe(['--memory', '--no-https', '--time-scale', '100000', '--keepalive-timeout', '45m']);
    try {
      // A token lives 3599 virtual seconds: 36 ms of wall time here. On a loaded machine it can
      // expire before it is used; a client would fetch another, and so does this test (bounded).
      let created: Response | undefined;
      for (let i = 0; i < 20 && created?.status !== 201; i++) {
        const tokenRes = await requestToken(p.base);
        const { access_token, expires_in } = (await tokenRes.json()) as { access_token: string; expires_in: number };
        assert.equal(expires_in, 3599, 'tokens live on the wall clock: the real lifetime, whatever the time scale');
        created = await fetch(`${p.base}/v1.0/communications/calls`, {
          method: 'POST',
          headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
          body: JSON.stringify(callBody()),
        });
      }
      assert.ok(created);
      assert.equal(created.status, 201);
      const { id } = (await created.json()) as { id: string };
      // Watch (bounded) for the server's own scheduler to end it; we send nothing to the Graph API.
      let state = '';
      for (let i = 0; i < 400 && state !== 'terminated'; i++) {
        state = ((await (await fetch(`${p.base}/_callkeeper/calls/${id}`)).json()) as { state: string }).state;
        if (state !== 'terminated') await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(state, 'terminated');
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });
});
