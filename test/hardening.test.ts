import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { callBody, type GraphErrorBody, OTHER_APP, requestToken, startServer } from './helpers.js';

describe('JSON nested too deep', () => {
  test('a body thousands of levels deep is a 400 on Graph and the control API, never a 500', async () => {
    const s = await startServer();
    try {
      for (const depth of [4_200, 100_000]) {
        for (const [open, close] of [
          ['[', ']'],
          ['{"a":', '}'],
        ] as const) {
          const deep = `{"callbackUri":${open.repeat(depth)}1${close.repeat(depth)}}`;
          const graph = await s.graph('/v1.0/communications/calls', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: deep,
          });
          assert.equal(graph.status, 400, `graph ${depth} ${open}`);
          assert.match(((await graph.json()) as GraphErrorBody).error.message, /nested more than 64 levels/);
          const control = await fetch(`${s.base}/_callkeeper/apps`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: deep,
          });
          assert.equal(control.status, 400, `control ${depth} ${open}`);
        }
      }
      // Brackets inside strings do not count; a normal body still reaches validation.
      const ok = await s.graph('/v1.0/communications/calls', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ subject: '['.repeat(10_000), nested: JSON.parse(`${'['.repeat(60)}${']'.repeat(60)}`) }),
      });
      assert.equal(ok.status, 400);
      assert.doesNotMatch(((await ok.json()) as GraphErrorBody).error.message, /levels deep/);
    } finally {
      await s.close();
    }
  });
});

describe('token endpoint: guessing secrets', () => {
  const ask = (base: string, secret: string, app = DEFAULT_APP) =>
    fetch(`${base}/${app.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        client_id: app.clientId,
        client_secret: secret,
        scope: 'https://graph.microsoft.com/.default',
        grant_type: 'client_credentials',
      }),
    });

  test("after 10 wrong secrets a minute, the client is refused with AAD's 429 and Retry-After, even with the right secret, until the minute is over", async () => {
    let wall = Date.UTC(2026, 5, 1);
    const s = await startServer({ wallTime: () => wall });
    try {
      for (let i = 0; i < 10; i++) assert.equal((await ask(s.base, `guess-${i}`)).status, 401);
      const refused = await ask(s.base, 'guess-10');
      assert.equal(refused.status, 429);
      assert.equal(refused.headers.get('retry-after'), '60');
      const body = (await refused.json()) as { error: string; error_codes: number[]; error_description: string };
      assert.equal(body.error, 'temporarily_unavailable');
      assert.deepEqual(body.error_codes, [90055]);
      assert.match(body.error_description, /^AADSTS90055: /);
      assert.equal((await ask(s.base, DEFAULT_APP.clientSecret)).status, 429, 'a correct guess is not confirmed while throttled');
      wall += 30_000;
      assert.equal((await ask(s.base, DEFAULT_APP.clientSecret)).headers.get('retry-after'), '30');
      wall += 30_001;
      assert.equal((await ask(s.base, DEFAULT_APP.clientSecret)).status, 200);
    } finally {
      await s.close();
    }
  });

  test('the right secret never counts, and a source guessing at one client is refused for the others too', async () => {
    const wall = Date.UTC(2026, 5, 1);
    const s = await startServer({ wallTime: () => wall });
    try {
      for (let i = 0; i < 50; i++) assert.equal((await ask(s.base, DEFAULT_APP.clientSecret)).status, 200);
      for (let i = 0; i < 10; i++) assert.equal((await ask(s.base, `guess-${i}`, OTHER_APP)).status, 401);
      assert.equal((await ask(s.base, 'guess', OTHER_APP)).status, 429);
      assert.equal((await ask(s.base, 'guess', DEFAULT_APP)).status, 429, 'same source');
    } finally {
      await s.close();
    }
  });
});

describe('calls bound to their cloud', () => {
  test('a US Gov token cannot touch a global call, nor a global token a US Gov or DoD call: 404, and the call lives on', async () => {
    const s = await startServer();
    try {
      const tokenOf = async (prefix: string, scope: string) => {
        const res = await requestToken(s.base, DEFAULT_APP, scope, prefix);
        assert.equal(res.status, 200, prefix);
        return ((await res.json()) as { access_token: string }).access_token;
      };
      const global = await s.token();
      const usgov = await tokenOf('/usgov', 'https://graph.microsoft.us/.default');
      const dod = await tokenOf('/dod', 'https://dod-graph.microsoft.us/.default');
      const create = async (prefix: string, token: string) => {
        const res = await fetch(`${s.base}${prefix}/v1.0/communications/calls`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(callBody()),
        });
        assert.equal(res.status, 201, prefix);
        return ((await res.json()) as { id: string }).id;
      };
      const act = (prefix: string, token: string, id: string, what = '/keepAlive', method = 'POST') =>
        fetch(`${s.base}${prefix}/v1.0/communications/calls/${id}${what}`, { method, headers: { authorization: `Bearer ${token}` } }).then(
          (r) => r.status,
        );
      const g = await create('', global);
      const u = await create('/usgov', usgov);
      const d = await create('/dod', dod);
      // Each cloud's own token, on its own root: fine.
      assert.equal(await act('', global, g), 200);
      assert.equal(await act('/usgov', usgov, u), 200);
      assert.equal(await act('/dod', dod, d), 200);
      // Another cloud's root and token, with the right id: as if there were no such call.
      for (const [prefix, token, id] of [
        ['/usgov', usgov, g],
        ['', global, u],
        ['/dod', dod, u],
        ['', global, d],
        ['/usgov', usgov, d],
      ] as const) {
        assert.equal(await act(prefix, token, id), 404, `${prefix || 'global'} → ${id}`);
        assert.equal(await act(prefix, token, id, '', 'GET'), 404);
        assert.equal(await act(prefix, token, id, '', 'DELETE'), 404);
      }
      // None of that ended anything.
      for (const [prefix, token, id] of [
        ['', global, g],
        ['/usgov', usgov, u],
        ['/dod', dod, d],
      ] as const)
        assert.equal(await act(prefix, token, id, '', 'GET'), 200);
    } finally {
      await s.close();
    }
  });
});
