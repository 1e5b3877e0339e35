import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeJwt, exportSPKI, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { keyDirectory } from '../src/auth/key-directory.js';
import { callBody, type GraphErrorBody, OTHER_APP, requestToken, startServer, type TestServer, tempDir } from './helpers.js';

const WWW_AUTHENTICATE =
  'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"';
const errorOf = (body: unknown) => {
  const e = (body as GraphErrorBody).error;
  return [e.code, e.message];
};

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('tokens and who may see a call', () => {
  let s: TestServer;
  let callId: string;
  before(async () => {
    s = await startServer();
    callId = await s.createCall();
  });
  after(() => s.close());

  const get = (token: string | undefined, id = callId) =>
    fetch(`${s.base}/v1.0/communications/calls/${id}`, token === undefined ? {} : { headers: { authorization: token } });

  async function expect401(res: Response, message: RegExp): Promise<void> {
    assert.equal(res.status, 401);
    const body = (await res.json()) as GraphErrorBody;
    assert.equal(body.error.code, 'InvalidAuthenticationToken');
    assert.match(body.error.message, message);
  }

  test('the token endpoint issues an app-only RS256 token with Graph claims, verifiable with the published JWKS', async () => {
    const res = await requestToken(s.base);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { token_type: string; expires_in: number; ext_expires_in: number; access_token: string };
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 3599);
    const claims = decodeJwt(body.access_token);
    assert.equal(claims.aud, 'https://graph.microsoft.com');
    assert.equal(claims.iss, `https://sts.windows.net/${DEFAULT_APP.tenantId}/`);
    assert.equal(claims.tid, DEFAULT_APP.tenantId);
    assert.equal(claims.appid, DEFAULT_APP.clientId);
    assert.equal(claims.idtyp, 'app');
    assert.deepEqual(claims.roles, DEFAULT_APP.roles);
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 3599);
    const jwks = (await (await fetch(`${s.base}/${DEFAULT_APP.tenantId}/discovery/v2.0/keys`)).json()) as Parameters<
      typeof createLocalJWKSet
    >[0];
    const { protectedHeader } = await jwtVerify(body.access_token, createLocalJWKSet(jwks));
    assert.equal(protectedHeader.alg, 'RS256');
  });

  test('a wrong secret is 401 invalid_client; an unknown client or tenant is a 400, as AAD answers', async () => {
    const ask = (tenant: string, client_id: string, client_secret: string) =>
      fetch(`${s.base}/${tenant}/oauth2/v2.0/token`, {
        method: 'POST',
        body: new URLSearchParams({
          client_id,
          client_secret,
          scope: 'https://graph.microsoft.com/.default',
          grant_type: 'client_credentials',
        }),
      });
    const wrong = await ask(DEFAULT_APP.tenantId, DEFAULT_APP.clientId, 'nope');
    assert.equal(wrong.status, 401);
    const wb = (await wrong.json()) as { error: string; error_codes: number[] };
    assert.equal(wb.error, 'invalid_client');
    assert.deepEqual(wb.error_codes, [7000215]);
    const unknown = await ask(DEFAULT_APP.tenantId, '11111111-1111-1111-1111-111111111111', 'x');
    assert.equal(unknown.status, 400);
    assert.equal(((await unknown.json()) as { error: string }).error, 'unauthorized_client');
    const tenant = await ask('22222222-2222-2222-2222-222222222222', DEFAULT_APP.clientId, DEFAULT_APP.clientSecret);
    assert.equal(tenant.status, 400);
  });

  test('a valid token gets the call', async () => {
    const token = await s.token();
    assert.equal((await get(`Bearer ${token}`, await s.createCall(undefined, token))).status, 200);
  });

  test('no Authorization header, or not a Bearer one, is 401 "Access token is empty."', async () => {
    await expect401(await get(undefined), /^Access token is empty\.$/);
    await expect401(await get('Basic abc'), /^Access token is empty\.$/);
    await expect401(await get('Bearer'), /^Access token is empty\.$/);
  });

  test('a malformed token is 401', async () => {
    await expect401(await get('Bearer not.a.jwt'), /validation failure/);
    await expect401(await get('Bearer abc'), /validation failure/);
  });

  test("a token with alg 'none' is 401", async () => {
    const real = decodeJwt(await s.token());
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(real)}.`;
    await expect401(await get(`Bearer ${none}`), /validation failure/);
  });

  test('an HS256 token signed with the public key as secret is 401', async () => {
    const real = decodeJwt(await s.token());
    const secret = new TextEncoder().encode(await exportSPKI(s.ck.key.publicKey));
    const forged = await new SignJWT(real).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: s.ck.key.kid }).sign(secret);
    await expect401(await get(`Bearer ${forged}`), /algorithm|validation failure/);
  });

  test('a token signed by another RSA key with our kid is 401', async () => {
    const real = decodeJwt(await s.token());
    const other = await generateKeyPair('RS256');
    const forged = await new SignJWT(real).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: s.ck.key.kid }).sign(other.privateKey);
    await expect401(await get(`Bearer ${forged}`), /Invalid signature/);
  });

  test('a token with a tampered payload or signature is 401', async () => {
    const token = await s.token();
    const [h, p, sig] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const elevated = `${h}.${b64({ ...claims, roles: [...(claims.roles as string[]), 'Extra.All'] })}.${sig}`;
    await expect401(await get(`Bearer ${elevated}`), /Invalid signature/);
    const flipped = `${h}.${p}.${sig.slice(0, 10)}${sig[10] === 'A' ? 'B' : 'A'}${sig.slice(11)}`;
    await expect401(await get(`Bearer ${flipped}`), /Invalid signature/);
  });

  test("an expired token is 401 with Graph's exact message and challenge, even after it was verified and cached", async () => {
    const token = await s.token(); // issued at wall time t; exp = t + 3599 s
    const create = () =>
      s.graph('/v1.0/communications/calls', {
        method: 'POST',
        token,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(callBody()),
      });
    assert.equal((await create()).status, 201); // verified once, now cached
    // Microsoft's validators allow 5 minutes of clock skew past exp.
    // The wall clock is the real one plus an offset, and iat has second precision: leave 10 s of
    // real time either side of the 5-minute edge so a slow machine cannot flip the result.
    s.advanceWall((3599 + 290) * 1000);
    assert.equal((await create()).status, 201);
    s.advanceWall(20_000);
    const res = await create();
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), WWW_AUTHENTICATE);
    assert.deepEqual(errorOf(await res.json()), ['InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.']);
    // A new token works again.
    assert.equal((await s.graph(`/v1.0/communications/calls/${callId}`, { token: await s.token() })).status, 200);
  });

  test('virtual time does not age tokens: 10 virtual hours later the same token still works', async () => {
    const token = await s.token();
    await s.advance(10 * 3600_000);
    assert.equal((await get(`Bearer ${token}`, await s.createCall(undefined, token))).status, 200);
  });

  test('a token whose nbf is under 5 minutes ahead is accepted; further ahead is 401 "not yet valid"', async () => {
    const now = Math.floor(s.wallNow() / 1000);
    const soon = await s.ck.issuer.issue(DEFAULT_APP, undefined, { nbf: now + 240, iat: now + 240, exp: now + 3600 });
    assert.equal((await get(`Bearer ${soon.access_token}`, await s.createCall())).status, 200);
    const later = await s.ck.issuer.issue(DEFAULT_APP, undefined, { nbf: now + 600, iat: now + 600, exp: now + 3600 });
    const res = await get(`Bearer ${later.access_token}`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), WWW_AUTHENTICATE);
    assert.deepEqual(errorOf(await res.json()), ['InvalidAuthenticationToken', 'Lifetime validation failed, the token is not yet valid.']);
  });

  test("every 401 carries Graph's WWW-Authenticate challenge", async () => {
    for (const auth of [undefined, 'Bearer abc']) {
      const res = await get(auth);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), WWW_AUTHENTICATE, String(auth));
    }
  });

  test('a token for another audience is 401', async () => {
    const { access_token } = await s.ck.issuer.issue(DEFAULT_APP, undefined, { aud: 'https://management.azure.com' });
    await expect401(await get(`Bearer ${access_token}`), /Invalid audience/);
  });

  test('a token naming another issuer than its tenant is 401', async () => {
    const { access_token } = await s.ck.issuer.issue(DEFAULT_APP, undefined, { iss: 'https://sts.windows.net/evil/' });
    await expect401(await get(`Bearer ${access_token}`), /Invalid issuer/);
  });

  test("another app's call is 404 8522 on every route, and untouched", async () => {
    const other = await s.token(OTHER_APP);
    const id = await s.createCall();
    for (const [method, path] of [
      ['GET', `/v1.0/communications/calls/${id}`],
      ['POST', `/v1.0/communications/calls/${id}/keepAlive`],
      ['DELETE', `/v1.0/communications/calls/${id}`],
    ] as const) {
      const res = await s.graph(path, { method, token: other });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(((await res.json()) as GraphErrorBody).error.code, '8522');
    }
    const stored = await s.ck.store.get(id);
    assert.equal(stored?.state, 'establishing');
    assert.equal(stored?.lastKeepAliveAt, null);
  });

  test('the verified-token cache does not let a different token ride on a cached one', async () => {
    const token = await s.token();
    const id = await s.createCall(undefined, token);
    assert.equal((await get(`Bearer ${token}`, id)).status, 200);
    await expect401(await get(`Bearer ${token}x`, id), /validation failure/);
  });
});

describe('token verification cost', () => {
  test('a token is signature-checked once, then served from the cache until it expires', async () => {
    const s = await startServer();
    try {
      const token = await s.token();
      const id = await s.createCall(undefined, token);
      const before = s.ck.verifier.signatureChecks;
      for (let i = 0; i < 50; i++) {
        assert.equal((await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST', token })).status, 200);
      }
      assert.equal(s.ck.verifier.signatureChecks, before, 'no RS256 verify for a cached token');
      const other = await s.token();
      assert.equal((await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST', token: other })).status, 200);
      assert.equal(s.ck.verifier.signatureChecks, before + 1, 'a new token is verified once');
    } finally {
      await s.close();
    }
  });
});

describe('signing keys', () => {
  const keysOf = async (s: TestServer) => {
    const token = (await (await fetch(`${s.base}/${DEFAULT_APP.tenantId}/discovery/v2.0/keys`)).json()) as { keys: { kid: string }[] };
    const notification = (await (await fetch(`${s.base}/botframework/v1/.well-known/keys`)).json()) as { keys: { kid: string }[] };
    return { token: token.keys.map((k) => k.kid), notification: notification.keys.map((k) => k.kid) };
  };

  test('in-memory servers of one process share their keys (docs/decisions.md); a data directory keeps its own across restarts', async () => {
    // Not the run's key directory (test/suite-keys.ts): how stores make keys themselves.
    const own = { signingKeyDir: undefined };
    const a = await startServer(own);
    const b = await startServer(own);
    const dir = tempDir();
    try {
      const memory = await keysOf(a);
      assert.equal(memory.token.length, 1);
      assert.deepEqual(await keysOf(b), memory, 'the same JWKS from two in-memory servers');
      // A token of one is accepted by the other, as one Entra key set signs for every endpoint.
      const token = await a.token();
      assert.equal((await b.graph('/v1.0/communications/calls/x/keepAlive', { method: 'POST', token })).status, 404);

      const durable = await startServer({ ...own, dataDir: dir.path });
      let kept: Awaited<ReturnType<typeof keysOf>>;
      try {
        kept = await keysOf(durable);
        assert.notDeepEqual(kept.token, memory.token, 'a data directory makes a key of its own');
        assert.notDeepEqual(kept.notification, memory.notification);
      } finally {
        await durable.close();
      }
      const again = await startServer({ ...own, dataDir: dir.path });
      try {
        assert.deepEqual(await keysOf(again), kept, 'and keeps it across a restart');
      } finally {
        await again.close();
      }
    } finally {
      await a.close();
      await b.close();
      dir.remove();
    }
  });

  test('a key directory: made once, read back, shared by two makers racing for it; a file that is not a key is replaced', async () => {
    const dir = tempDir();
    try {
      const keys = join(dir.path, 'keys');
      const [x, y] = await Promise.all([keyDirectory(keys)('token-signing-key'), keyDirectory(keys)('token-signing-key')]);
      assert.deepEqual(x, y, 'two makers at once agree on one key');
      assert.deepEqual(readdirSync(keys), ['token-signing-key.jwk'], 'no temporary file left');
      assert.deepEqual(await keyDirectory(keys)('token-signing-key'), x, 'read back');
      writeFileSync(join(keys, 'token-signing-key.jwk'), '{"kty":"RSA"');
      const replaced = await keyDirectory(keys)('token-signing-key');
      assert.notDeepEqual(replaced, x);
      assert.deepEqual(await keyDirectory(keys)('token-signing-key'), replaced);
      assert.equal(statSync(join(keys, 'token-signing-key.jwk')).mode & 0o777, 0o600);
    } finally {
      dir.remove();
    }
  });

  test('a key directory holding something else: a JWK of another kind is replaced, a path that cannot be read stops the start', async () => {
    const dir = tempDir();
    try {
      const keys = join(dir.path, 'keys');
      mkdirSync(keys, { mode: 0o700 });
      writeFileSync(join(keys, 'token-signing-key.jwk'), JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd' }));
      const made = await keyDirectory(keys)('token-signing-key');
      assert.equal(made.kty, 'RSA');
      mkdirSync(join(keys, 'notification-signing-key.jwk'));
      await assert.rejects(keyDirectory(keys)('notification-signing-key'), /EISDIR/);
    } finally {
      dir.remove();
    }
  });

  test('signingKeyDir with stores of their own: a new data directory takes the keys of the directory, one that has keys keeps them', async () => {
    const dir = tempDir();
    try {
      const keys = join(dir.path, 'keys');
      const own = await startServer({ signingKeyDir: undefined, dataDir: join(dir.path, 'own') });
      let ownKids: Awaited<ReturnType<typeof keysOf>>;
      try {
        ownKids = await keysOf(own);
      } finally {
        await own.close();
      }
      const fromDir = await startServer({ signingKeyDir: keys, dataDir: join(dir.path, 'fresh') });
      let dirKids: Awaited<ReturnType<typeof keysOf>>;
      let token: string;
      try {
        dirKids = await keysOf(fromDir);
        token = await fromDir.token();
        // Both made there (the notification key when its JWKS was first asked for), none in the store only.
        assert.deepEqual(readdirSync(keys).sort(), ['notification-signing-key.jwk', 'token-signing-key.jwk']);
      } finally {
        await fromDir.close();
      }
      assert.notDeepEqual(dirKids.token, ownKids.token);
      const another = await startServer({ signingKeyDir: keys, dataDir: join(dir.path, 'another') });
      try {
        assert.deepEqual(await keysOf(another), dirKids, 'a second new store signs as the first did');
        const res = await another.graph('/v1.0/communications/calls', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(callBody()),
          token,
        });
        assert.equal(res.status, 201, "the other store's token is valid here");
      } finally {
        await another.close();
      }
      const kept = await startServer({ signingKeyDir: keys, dataDir: join(dir.path, 'own') });
      try {
        assert.deepEqual(await keysOf(kept), ownKids, 'a store that has keys keeps its own');
      } finally {
        await kept.close();
      }
    } finally {
      dir.remove();
    }
  });

  test('createCallkeeper with signingKeyDir: an in-memory server takes its keys from the directory, and a restart the same', async () => {
    const dir = tempDir();
    try {
      const first = await startServer({ signingKeyDir: dir.path });
      let kids: Awaited<ReturnType<typeof keysOf>>;
      try {
        kids = await keysOf(first);
      } finally {
        await first.close();
      }
      const stored = JSON.parse(readFileSync(join(dir.path, 'token-signing-key.jwk'), 'utf8')) as { n: string };
      assert.ok(stored.n);
      const again = await startServer({ signingKeyDir: dir.path });
      try {
        assert.deepEqual(await keysOf(again), kids);
      } finally {
        await again.close();
      }
    } finally {
      dir.remove();
    }
  });
});
