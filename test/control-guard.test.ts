import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { CONTROL_TOKEN_HEADER } from '../src/http/control-guard.js';
import { createCallkeeper } from '../src/server.js';
import { spawnServe } from './cli-process.js';
import { type GraphErrorBody, MINUTE, OTHER_APP, requestToken, startServer, type TestServer } from './helpers.js';
import { suiteKeys } from './suite-keys.js';

/** A raw HTTP request: lets a test send any Host, Origin and content type, as a web page would. */
function raw(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body = '',
): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, method, path, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('control guard: what a web page the developer visits can send', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  test('a cross-site form POST to /clock/advance is refused and time does not move', async () => {
    const t = s.clock.now();
    const host = new URL(s.base).host;
    // What <form method=post action=http://127.0.0.1:4545/_callkeeper/clock/advance> sends.
    const attack = await raw(
      s.base,
      'POST',
      '/_callkeeper/clock/advance',
      { host, origin: 'https://evil.test', 'sec-fetch-site': 'cross-site', 'content-type': 'application/x-www-form-urlencoded' },
      'ms=45m',
    );
    assert.equal(attack.status, 403);
    assert.equal((JSON.parse(attack.body) as GraphErrorBody).error.code, 'Forbidden');
    // The same form without Origin (an old browser, a proxy stripping it): the form body is refused.
    const form = await raw(
      s.base,
      'POST',
      '/_callkeeper/clock/advance',
      { host, 'content-type': 'application/x-www-form-urlencoded' },
      'ms=45m',
    );
    assert.equal(form.status, 415);
    // text/plain is the other body a page can send without a preflight.
    const text = await raw(s.base, 'POST', '/_callkeeper/clock/advance', { host, 'content-type': 'text/plain' }, '{"ms":2700000}');
    assert.equal(text.status, 415);
    assert.equal(s.clock.now(), t);
  });

  test('an empty form POST cannot end a call, nor register an app', async () => {
    const id = await s.createCall();
    const host = new URL(s.base).host;
    const expire = await raw(s.base, 'POST', `/_callkeeper/calls/${id}/expire`, {
      host,
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(expire.status, 415);
    const call = (await (await fetch(`${s.base}/_callkeeper/calls/${id}`)).json()) as { state: string };
    assert.notEqual(call.state, 'terminated');
    const before = (await (await fetch(`${s.base}/_callkeeper/apps`)).json()) as { value: unknown[] };
    const reg = await raw(
      s.base,
      'POST',
      '/_callkeeper/apps',
      { host, 'content-type': 'application/x-www-form-urlencoded' },
      'displayName=x&tenantId=ca11ca11-0000-4000-8000-000000000009',
    );
    assert.equal(reg.status, 415);
    const afterApps = (await (await fetch(`${s.base}/_callkeeper/apps`)).json()) as { value: unknown[] };
    assert.equal(afterApps.value.length, before.value.length);
  });

  test('DNS rebinding: a foreign Host gets 403 and no app secret', async () => {
    const port = new URL(s.base).port;
    for (const host of [`rebind.evil.test:${port}`, 'rebind.evil.test', `localhost.evil.test:${port}`]) {
      const res = await raw(s.base, 'GET', '/_callkeeper/apps', { host });
      assert.equal(res.status, 403, host);
      assert.ok(!res.body.includes(DEFAULT_APP.clientSecret), host);
      assert.ok(!res.body.includes(OTHER_APP.clientSecret), host);
      const adv = await raw(s.base, 'POST', '/_callkeeper/clock/advance', { host, 'content-type': 'application/json' }, '{"ms":1}');
      assert.equal(adv.status, 403, host);
    }
    // The names a developer uses still work.
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
      const res = await raw(s.base, 'GET', '/_callkeeper/apps', { host });
      assert.equal(res.status, 200, host);
    }
  });

  test("the server's own page (same Origin) may POST JSON; a foreign or opaque Origin may not", async () => {
    const host = new URL(s.base).host;
    const ok = await raw(
      s.base,
      'POST',
      '/_callkeeper/clock/advance',
      { host, origin: s.base, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' },
      '{"ms":1}',
    );
    assert.equal(ok.status, 200);
    for (const origin of ['null', 'http://127.0.0.1:1', 'https://evil.test']) {
      const res = await raw(s.base, 'POST', '/_callkeeper/clock/advance', { host, origin, 'content-type': 'application/json' }, '{"ms":1}');
      assert.equal(res.status, 403, origin);
    }
  });

  test('the token endpoint, OpenID documents and Graph are not control routes: clients keep working under any Host', async () => {
    const token = await requestToken(s.base);
    assert.equal(token.status, 200);
    const port = new URL(s.base).port;
    const discovery = await raw(s.base, 'GET', `/${DEFAULT_APP.tenantId}/v2.0/.well-known/openid-configuration`, {
      host: `callkeeper.test:${port}`,
    });
    assert.equal(discovery.status, 200);
    const bot = await raw(s.base, 'GET', '/botframework/v1/.well-known/openidconfiguration', { host: `callkeeper.test:${port}` });
    assert.equal(bot.status, 200);
    const form = await raw(
      s.base,
      'POST',
      `/${DEFAULT_APP.tenantId}/oauth2/v2.0/token`,
      { host: `callkeeper.test:${port}`, 'content-type': 'application/x-www-form-urlencoded' },
      new URLSearchParams({
        client_id: DEFAULT_APP.clientId,
        client_secret: DEFAULT_APP.clientSecret,
        scope: 'https://graph.microsoft.com/.default',
        grant_type: 'client_credentials',
      }).toString(),
    );
    assert.equal(form.status, 200);
  });
});

describe('control guard: the token rule', () => {
  test('without --control-token, a client that is not on loopback is refused (inject with a remote address)', async () => {
    const ck = await createCallkeeper({ dataDir: undefined, logger: false, ...suiteKeys() });
    try {
      const remote = await ck.app.inject({ method: 'GET', url: '/_callkeeper/apps', remoteAddress: '192.0.2.7' });
      assert.equal(remote.statusCode, 403);
      assert.match((remote.json() as GraphErrorBody).error.message, /--control-token/);
      assert.ok(!remote.body.includes(DEFAULT_APP.clientSecret));
      const local = await ck.app.inject({ method: 'GET', url: '/_callkeeper/apps', remoteAddress: '127.0.0.1' });
      assert.equal(local.statusCode, 200);
      const mapped = await ck.app.inject({ method: 'GET', url: '/_callkeeper/apps', remoteAddress: '::ffff:127.0.0.1' });
      assert.equal(mapped.statusCode, 200);
    } finally {
      await ck.close();
    }
  });

  test('with --control-token, every control request needs it, from anywhere; Graph does not', async () => {
    const ck = await createCallkeeper({ dataDir: undefined, logger: false, controlToken: 's3cret-control', ...suiteKeys() });
    try {
      for (const remoteAddress of ['192.0.2.7', '127.0.0.1']) {
        const none = await ck.app.inject({ method: 'GET', url: '/_callkeeper/apps', remoteAddress });
        assert.equal(none.statusCode, 401, remoteAddress);
        const wrong = await ck.app.inject({
          method: 'GET',
          url: '/_callkeeper/apps',
          remoteAddress,
          headers: { [CONTROL_TOKEN_HEADER]: 'guess' },
        });
        assert.equal(wrong.statusCode, 401, remoteAddress);
        const right = await ck.app.inject({
          method: 'POST',
          url: '/_callkeeper/clock/advance',
          remoteAddress,
          headers: { [CONTROL_TOKEN_HEADER]: 's3cret-control', 'content-type': 'application/json', host: 'callkeeper:4545' },
          payload: { ms: MINUTE },
        });
        assert.equal(right.statusCode, 200, remoteAddress);
      }
      const health = await ck.app.inject({ method: 'GET', url: '/_callkeeper/health', remoteAddress: '192.0.2.7' });
      assert.equal(health.statusCode, 200, 'the liveness probe needs no token');
      const graph = await ck.app.inject({ method: 'GET', url: '/v1.0/communications/calls/x', remoteAddress: '192.0.2.7' });
      assert.equal(graph.statusCode, 401, 'Graph answers its own 401, not the control guard');
      assert.equal((graph.json() as GraphErrorBody).error.code, 'InvalidAuthenticationToken');
    } finally {
      await ck.close();
    }
  });

  test('bound to every interface (0.0.0.0), even a loopback client needs the token; the address returned is the one bound', async () => {
    const ck = await createCallkeeper({ dataDir: undefined, logger: false, ...suiteKeys() });
    try {
      const address = await ck.listen('0.0.0.0', 0);
      assert.match(address, /^http:\/\/0\.0\.0\.0:\d+$/);
      const port = new URL(address).port;
      const res = await fetch(`http://127.0.0.1:${port}/_callkeeper/apps`);
      assert.equal(res.status, 403);
      assert.ok(!(await res.text()).includes(DEFAULT_APP.clientSecret));
    } finally {
      await ck.close();
    }
  });
});

test('serve --host 0.0.0.0 prints the address it is bound to and warns that the control API needs a token', async () => {
  const p = await spawnServe(['--memory', '--no-https', '--host', '0.0.0.0']);
  try {
    assert.match(p.base, /^http:\/\/0\.0\.0\.0:\d+$/);
    assert.match(p.output(), /Control API {2}http:\/\/0\.0\.0\.0:\d+\/_callkeeper/);
    assert.match(p.output(), /WARNING: listening on 0\.0\.0\.0, reachable from the network/);
    assert.match(p.output(), /refuses every request: start with --control-token/);
  } finally {
    p.child.kill('SIGTERM');
    await p.exited;
  }
});
