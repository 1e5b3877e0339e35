import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { runCli, spawnServe } from './cli-process.js';
import { type GraphErrorBody, OTHER_APP, requestToken, startServer, type TestServer } from './helpers.js';

const EXPIRED = 'Lifetime validation failed, the token is expired.';

describe('POST /_callkeeper/tokens/expire', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  const keepAlive = (id: string, token: string) => s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST', token });
  const expire = (body?: unknown) =>
    fetch(`${s.base}/_callkeeper/tokens/expire`, {
      method: 'POST',
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });

  test('a token verified and cached before the call is refused with the exact expired message; a new token works', async () => {
    const token = await s.token();
    const id = await s.createCall(undefined, token);
    assert.equal((await keepAlive(id, token)).status, 200);
    const checks = s.ck.verifier.signatureChecks;
    assert.equal((await keepAlive(id, token)).status, 200);
    assert.equal(s.ck.verifier.signatureChecks, checks, 'the token is served from the verifier cache');

    const res = await expire();
    assert.equal(res.status, 200);
    const answer = (await res.json()) as { appId: string | null; expiredBeforeDateTime: string };
    assert.equal(answer.appId, null);

    const refused = await keepAlive(id, token);
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('www-authenticate') ?? '', /^Bearer realm="", authorization_uri=/);
    const body = (await refused.json()) as GraphErrorBody;
    assert.equal(body.error.code, 'InvalidAuthenticationToken');
    assert.equal(body.error.message, EXPIRED);

    // A token issued right after the call (even within the same second) is good.
    const fresh = await s.token();
    assert.ok((decodeJwt(fresh).iat ?? 0) * 1000 >= Date.parse(answer.expiredBeforeDateTime));
    assert.equal((await keepAlive(id, fresh)).status, 200);
    assert.equal((await keepAlive(id, token)).status, 401, 'the old token stays refused');
  });

  test('{"appId"} expires only that app\'s tokens', async () => {
    const mine = await s.token();
    const theirs = await s.token(OTHER_APP);
    const myCall = await s.createCall(undefined, mine);
    const theirCall = await s.createCall(undefined, theirs);
    const res = await expire({ appId: OTHER_APP.clientId });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { appId: string }).appId, OTHER_APP.clientId);
    assert.equal((await keepAlive(myCall, mine)).status, 200);
    const refused = await keepAlive(theirCall, theirs);
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as GraphErrorBody).error.message, EXPIRED);
    assert.equal((await keepAlive(theirCall, await s.token(OTHER_APP))).status, 200);
  });

  test('an unknown appId or another property is a 400 naming it, and expires nothing', async () => {
    const token = await s.token();
    const id = await s.createCall(undefined, token);
    for (const body of [{ appId: 'nobody' }, { appId: 42 }, { app: DEFAULT_APP.clientId }, [1]]) {
      const res = await expire(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      const err = (await res.json()) as GraphErrorBody;
      assert.equal(err.error.code, 'BadRequest');
      assert.match(err.error.message, /appId|app|body/);
    }
    assert.equal((await keepAlive(id, token)).status, 200);
  });

  test('expires_in is the real lifetime, 3599 s, whatever the virtual clock does', async () => {
    await s.advance(5 * 3600_000);
    const res = await requestToken(s.base);
    const body = (await res.json()) as { expires_in: number; access_token: string };
    assert.equal(body.expires_in, 3599);
    const claims = decodeJwt(body.access_token);
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 3599);
    assert.ok(Math.abs((claims.iat ?? 0) * 1000 - Date.now()) < 60_000, 'iat is wall-clock time, not virtual');
  });
});

describe('token lifetime', () => {
  test('tokenLifetimeS sets exp and expires_in; below 10 minutes or above a day is refused', async () => {
    const s = await startServer({ tokenLifetimeS: 600 });
    try {
      const body = (await (await requestToken(s.base)).json()) as { expires_in: number; access_token: string };
      assert.equal(body.expires_in, 600);
      const claims = decodeJwt(body.access_token);
      assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 600);
    } finally {
      await s.close();
    }
    await assert.rejects(startServer({ tokenLifetimeS: 599 }), /10 minutes/);
    await assert.rejects(startServer({ tokenLifetimeS: 86_401 }), /1 day/);
  });
});

describe('callkeeper serve --token-lifetime', () => {
  test('sets expires_in and exp on the wall clock, whatever --time-scale says', async () => {
    const p = await spawnServe(['--memory', '--no-https', '--time-scale', '1000', '--token-lifetime', '15m']);
    try {
      const body = (await (await requestToken(p.base)).json()) as { expires_in: number; access_token: string };
      assert.equal(body.expires_in, 900);
      const claims = decodeJwt(body.access_token);
      assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 900);
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });

  test('below 10 minutes or above a day is refused at start, naming the flag', async () => {
    for (const value of ['5m', '2d']) {
      const { code, stderr } = await runCli(['serve', '--memory', '--no-https', '--port', '0', '--token-lifetime', value]);
      assert.notEqual(code, 0, value);
      assert.match(stderr, /--token-lifetime/, value);
    }
  });
});
