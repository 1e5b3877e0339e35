import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AppRegistration } from '../src/auth/apps.js';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { CLOUDS } from '../src/auth/clouds.js';
import { spawnServe } from './cli-process.js';
import { callBody, type GraphErrorBody, startServer, type TestServer, tempDir } from './helpers.js';

const app = (clientId: string, roles: string[]): AppRegistration => ({
  displayName: `app with ${roles.join('+') || 'no roles'}`,
  tenantId: DEFAULT_APP.tenantId,
  clientId,
  clientSecret: `secret-${clientId}`,
  roles,
});

const P2P_ONLY = app('00000000-0000-4000-8000-0000000000a1', ['Calls.Initiate.All']);
const GROUP_ONLY = app('00000000-0000-4000-8000-0000000000a2', ['Calls.InitiateGroupCall.All']);
const GUEST_JOINER = app('00000000-0000-4000-8000-0000000000a3', ['Calls.JoinGroupCallAsGuest.All']);
const P2P_MEDIA = app('00000000-0000-4000-8000-0000000000a4', ['Calls.Initiate.All', 'Calls.AccessMedia.All']);
const NO_ROLES = app('00000000-0000-4000-8000-0000000000a5', []);

const twoTargets = [{ identity: { user: { id: 'u1' } } }, { identity: { user: { id: 'u2' } } }];
const meeting = {
  targets: undefined,
  meetingInfo: { '@odata.type': '#microsoft.graph.joinMeetingIdMeetingInfo', joinMeetingId: '1234567890', passcode: null },
};
const appHosted = { mediaConfig: { '@odata.type': '#microsoft.graph.appHostedMediaConfig', blob: '<media session blob>' } };

describe('permissions as Graph applies them', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ apps: [DEFAULT_APP, P2P_ONLY, GROUP_ONLY, GUEST_JOINER, P2P_MEDIA, NO_ROLES] });
  });
  after(() => s.close());

  async function create(who: AppRegistration, body: Record<string, unknown>): Promise<Response> {
    return s.graph('/v1.0/communications/calls', {
      method: 'POST',
      token: await s.token(who),
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(callBody(body)),
    });
  }

  const cases: [string, AppRegistration, Record<string, unknown>, number][] = [
    ['peer-to-peer with Calls.Initiate.All', P2P_ONLY, {}, 201],
    ['peer-to-peer with only a group permission', GROUP_ONLY, {}, 403],
    ['group call with Calls.InitiateGroupCall.All', GROUP_ONLY, { targets: twoTargets }, 201],
    ['group call with only Calls.Initiate.All', P2P_ONLY, { targets: twoTargets }, 403],
    ['meeting with Calls.JoinGroupCallAsGuest.All', GUEST_JOINER, meeting, 201],
    ['meeting with only Calls.Initiate.All', P2P_ONLY, meeting, 403],
    ['app-hosted media with Calls.AccessMedia.All', P2P_MEDIA, appHosted, 201],
    ['app-hosted media without Calls.AccessMedia.All', P2P_ONLY, appHosted, 403],
    ['any call with no roles at all', NO_ROLES, {}, 403],
  ];
  for (const [name, who, body, status] of cases) {
    test(`create: ${name} -> ${status}`, async () => {
      const res = await create(who, body);
      assert.equal(res.status, status);
      if (status === 403) {
        const err = (await res.json()) as GraphErrorBody;
        assert.equal(err.error.code, '7504');
        assert.match(err.error.message, /^Insufficient enterprise tenant permissions, cannot access this API\./);
      }
    });
  }

  test('keepAlive, get and hang-up need no role, only that the call is the app’s', async () => {
    const id = await s.createCall(callBody(), await s.token(P2P_ONLY));
    // Same app, now holding a token of an app registration whose roles were all revoked, would
    // still own the call; here the owner's own token is enough whatever its roles.
    const token = await s.token(P2P_ONLY);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST', token })).status, 200);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`, { token })).status, 200);
    const noRoles = await s.token(NO_ROLES);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST', token: noRoles })).status, 404);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE', token })).status, 204);
  });

  test('a delegated (user) token is 403 on every calls route', async () => {
    const { access_token } = await s.ck.issuer.issue(DEFAULT_APP, undefined, {
      idtyp: 'user',
      scp: 'Calls.Initiate.All',
      roles: undefined,
    });
    const id = await s.createCall();
    for (const [method, path] of [
      ['POST', '/v1.0/communications/calls'],
      ['POST', `/v1.0/communications/calls/${id}/keepAlive`],
      ['GET', `/v1.0/communications/calls/${id}`],
    ] as const) {
      const res = await s.graph(path, {
        method,
        token: access_token,
        headers: { 'content-type': 'application/json' },
        body: method === 'POST' ? '{}' : null,
      });
      assert.equal(res.status, 403, path);
      assert.equal(((await res.json()) as GraphErrorBody).error.code, 'Forbidden');
    }
  });
});

describe('national clouds side by side', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  async function cloudToken(prefix: string, resource: string): Promise<Response> {
    return fetch(`${s.base}${prefix}/${DEFAULT_APP.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({
        client_id: DEFAULT_APP.clientId,
        client_secret: DEFAULT_APP.clientSecret,
        scope: `${resource}/.default`,
        grant_type: 'client_credentials',
      }),
    });
  }

  for (const cloud of CLOUDS) {
    test(`${cloud.displayName}: its authority issues tokens for its own Graph, with its issuer`, async () => {
      const res = await cloudToken(cloud.prefix, cloud.graphResource);
      assert.equal(res.status, 200);
      const token = ((await res.json()) as { access_token: string }).access_token;
      const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { aud: string; iss: string };
      assert.equal(claims.aud, cloud.graphResource);
      assert.equal(claims.iss, cloud.issuer(DEFAULT_APP.tenantId));
      const wrongScope = await cloudToken(cloud.prefix, 'https://graph.example.org');
      assert.equal(wrongScope.status, 400);
      const discovery = (await (
        await fetch(`${s.base}${cloud.prefix}/${DEFAULT_APP.tenantId}/v2.0/.well-known/openid-configuration`)
      ).json()) as { token_endpoint: string };
      assert.equal(discovery.token_endpoint, `${s.base}${cloud.prefix}/${DEFAULT_APP.tenantId}/oauth2/v2.0/token`);
    });
  }

  test('a token from one cloud is 401 in every other', async () => {
    const callable = CLOUDS.filter((c) => c.callsAvailable);
    for (const from of CLOUDS) {
      const token = ((await (await cloudToken(from.prefix, from.graphResource)).json()) as { access_token: string }).access_token;
      for (const to of callable) {
        const res = await s.graph(`${to.prefix}/v1.0/communications/calls`, {
          method: 'POST',
          token,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(callBody()),
        });
        assert.equal(res.status, from === to ? 201 : 401, `${from.name} token in ${to.name}`);
      }
    }
  });

  test('keepAlive works in US Gov L4 and DoD under their prefixes', async () => {
    for (const cloud of CLOUDS.filter((c) => c.name === 'usgov' || c.name === 'dod')) {
      const token = ((await (await cloudToken(cloud.prefix, cloud.graphResource)).json()) as { access_token: string }).access_token;
      const created = await s.graph(`${cloud.prefix}/v1.0/communications/calls`, {
        method: 'POST',
        token,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(callBody()),
      });
      const call = (await created.json()) as { id: string; '@odata.context': string };
      assert.equal(created.headers.get('location'), `${s.base}${cloud.prefix}/v1.0/communications/calls/${call.id}`);
      assert.equal(call['@odata.context'], `${s.base}${cloud.prefix}/v1.0/$metadata#communications/calls/$entity`);
      assert.equal(
        (await s.graph(`${cloud.prefix}/beta/communications/calls/${call.id}/keepAlive`, { method: 'POST', token })).status,
        200,
      );
    }
  });

  test('China serves its authority, but its calls API does not exist', async () => {
    const token = ((await (await cloudToken('/china', 'https://microsoftgraph.chinacloudapi.cn')).json()) as { access_token: string })
      .access_token;
    for (const [method, path] of [
      ['POST', '/china/v1.0/communications/calls'],
      ['POST', '/china/v1.0/communications/calls/abc/keepAlive'],
      ['GET', '/china/beta/communications/calls/abc'],
    ] as const) {
      const res = await s.graph(path, { method, token });
      assert.equal(res.status, 400, path);
      const err = (await res.json()) as GraphErrorBody;
      assert.equal(err.error.code, 'BadRequest');
      assert.equal(err.error.message, "Resource not found for the segment 'calls'.");
    }
  });
});

describe('app registrations', () => {
  test('--config adds apps with their roles; a wrong secret or unknown client is refused as AAD does', async () => {
    const dir = tempDir();
    try {
      const config = join(dir.path, 'callkeeper.json');
      writeFileSync(
        config,
        JSON.stringify({
          apps: [
            {
              displayName: 'config bot',
              tenantId: '11111111-2222-4333-8444-555555555555',
              clientId: '99999999-2222-4333-8444-555555555555',
              clientSecret: 'config-secret',
              roles: ['Calls.Initiate.All'],
            },
          ],
        }),
      );
      const p = await spawnServe(['--memory', '--no-https', '--config', config]);
      try {
        const ask = (secret: string, clientId = '99999999-2222-4333-8444-555555555555') =>
          fetch(`${p.base}/11111111-2222-4333-8444-555555555555/oauth2/v2.0/token`, {
            method: 'POST',
            body: new URLSearchParams({
              client_id: clientId,
              client_secret: secret,
              scope: 'https://graph.microsoft.com/.default',
              grant_type: 'client_credentials',
            }),
          });
        const ok = await ask('config-secret');
        assert.equal(ok.status, 200);
        const claims = JSON.parse(
          Buffer.from(((await ok.json()) as { access_token: string }).access_token.split('.')[1] ?? '', 'base64url').toString(),
        ) as { roles: string[] };
        assert.deepEqual(claims.roles, ['Calls.Initiate.All']);
        const wrong = await ask('nope');
        assert.equal(wrong.status, 401);
        assert.equal(((await wrong.json()) as { error: string }).error, 'invalid_client');
      } finally {
        p.child.kill('SIGTERM');
        await p.exited;
      }
    } finally {
      dir.remove();
    }
  });

  test('POST /_callkeeper/apps registers an app that can get tokens at once and after a restart', async () => {
    const dir = tempDir();
    try {
      const first = await startServer({ dataDir: dir.path });
      const res = await fetch(`${first.base}/_callkeeper/apps`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ displayName: 'added bot', roles: ['Calls.Initiate.All'] }),
      });
      assert.equal(res.status, 201);
      const added = (await res.json()) as AppRegistration & { tokenEndpoint: string };
      assert.match(added.clientId, /^[0-9a-f-]{36}$/);
      const dup = await fetch(`${first.base}/_callkeeper/apps`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ clientId: added.clientId }),
      });
      assert.equal(dup.status, 409);
      const badRole = await fetch(`${first.base}/_callkeeper/apps`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ roles: ['Mail.Read'] }),
      });
      assert.equal(badRole.status, 400);
      assert.ok(await first.token(added));
      await first.close();
      const second = await startServer({ dataDir: dir.path });
      try {
        const id = await second.createCall(callBody(), await second.token(added));
        assert.ok(id);
      } finally {
        await second.close();
      }
    } finally {
      dir.remove();
    }
  });
});
