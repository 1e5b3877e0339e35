import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
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
      assert.ok(((await created.json()) as { id?: string }).id);
      // Watch (bounded) for the server's own scheduler to end it; we send nothing to the Graph API.
      // Read from /metrics, which counts it for good: the ended call itself is purged an hour of
      // virtual time (36 ms here) later, so a poll of the call may come too late on a busy machine.
      let ended = false;
      for (let i = 0; i < 400 && !ended; i++) {
        const metrics = await (await fetch(`${p.base}/metrics`)).text();
        ended = /^callkeeper_calls_ended_total\{code="408",subcode="8537"\} 1$/m.test(metrics);
        if (!ended) await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(ended, 'the call ended by keepAlive timeout (408/8537)');
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });

  test('serve --memory keeps its signing keys in the per-user state directory: a restart keeps tokens and notification keys valid', async () => {
    const state = tempDir();
    const other = tempDir();
    // Not the run's keys (test/cli-process.ts): how --memory keeps its own.
    const env = { ...process.env, XDG_STATE_HOME: state.path, CALLKEEPER_SIGNING_KEY_DIR: '' };
    const keys = async (base: string) => [
      ((await (await fetch(`${base}/${DEFAULT_APP.tenantId}/discovery/v2.0/keys`)).json()) as { keys: { kid: string }[] }).keys[0]?.kid,
      ((await (await fetch(`${base}/botframework/v1/.well-known/keys`)).json()) as { keys: { kid: string }[] }).keys[0]?.kid,
    ];
    try {
      const first = await spawnServe(['--memory', '--no-https'], undefined, env);
      let before: (string | undefined)[];
      let token: string;
      try {
        before = await keys(first.base);
        token = ((await (await requestToken(first.base)).json()) as { access_token: string }).access_token;
      } finally {
        first.child.kill('SIGTERM');
        await first.exited;
      }
      const dir = join(state.path, 'callkeeper', 'signing-keys');
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.deepEqual(readdirSync(dir).sort(), ['notification-signing-key.jwk', 'token-signing-key.jwk']);
      for (const f of readdirSync(dir)) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);

      const again = await spawnServe(['--memory', '--no-https'], undefined, env);
      try {
        assert.deepEqual(await keys(again.base), before, 'the same keys after a restart');
        const res = await fetch(`${again.base}/v1.0/communications/calls`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(callBody()),
        });
        assert.equal(res.status, 201, "the first run's token still gets a call");
      } finally {
        again.child.kill('SIGTERM');
        await again.exited;
      }
      const elsewhere = await spawnServe(['--memory', '--no-https'], undefined, { ...env, XDG_STATE_HOME: other.path });
      try {
        const theirs = await keys(elsewhere.base);
        assert.notEqual(theirs[0], before[0], "another user's (state directory's) keys are its own");
        assert.notEqual(theirs[1], before[1]);
      } finally {
        elsewhere.child.kill('SIGTERM');
        await elsewhere.exited;
      }
      // --signing-key-dir: a new data directory signs with that directory's keys.
      const pinned = await spawnServe(['--data', join(other.path, 'data'), '--no-https', '--signing-key-dir', dir], undefined, env);
      try {
        assert.deepEqual(await keys(pinned.base), before, 'a new data directory takes the keys of --signing-key-dir');
      } finally {
        pinned.child.kill('SIGTERM');
        await pinned.exited;
      }
    } finally {
      state.remove();
      other.remove();
    }
  });
});
