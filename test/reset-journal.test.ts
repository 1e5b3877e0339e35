/** POST /_callkeeper/reset and the request journal (GET /_callkeeper/requests), over real HTTP. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { OTHER_APP, requestToken, startServer, type TestServer } from './helpers.js';

interface Entry {
  at: string;
  method: string;
  path: string;
  status: number | null;
  latencyMs: number;
  appId: string | null;
  callId: string | null;
  requestId: string;
  clientRequestId: string;
  fault: string | null;
}

const post = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});
const NEW_APP = {
  tenantId: 'ca11ca11-0000-4000-8000-000000000009',
  clientId: 'ca11ca11-0000-4000-8000-0000000000c9',
  clientSecret: 'added-at-run-time',
  roles: ['Calls.Initiate.All'],
};

describe('request journal', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());
  const journal = async (query = '') => {
    const res = await fetch(`${s.base}/_callkeeper/requests${query}`);
    assert.equal(res.status, 200);
    return ((await res.json()) as { value: Entry[] }).value;
  };

  test('lists inbound Graph requests newest first with time, method, path, status, latency, app, call, ids and fault', async () => {
    const a = await s.createCall();
    const ka = await s.graph(`/v1.0/communications/calls/${a}/keepAlive`, {
      method: 'POST',
      headers: { 'client-request-id': 'my-request-1' },
    });
    assert.equal(ka.status, 200);
    const fault = (await (
      await fetch(`${s.base}/_callkeeper/faults`, post({ match: { callId: a }, effect: { status: 503 }, count: 1 }))
    ).json()) as {
      id: string;
    };
    assert.equal((await s.graph(`/v1.0/communications/calls/${a}`)).status, 503);
    await fetch(`${s.base}/v1.0/communications/calls/${a}`); // no token: 401, app unknown
    const [unauth, faulted, keepAlive, created] = await journal('?$top=4');
    assert.deepEqual([created?.method, created?.path, created?.status, created?.callId], ['POST', '/v1.0/communications/calls', 201, null]);
    assert.equal(created?.appId, DEFAULT_APP.clientId);
    assert.equal(keepAlive?.path, `/v1.0/communications/calls/${a}/keepAlive`);
    assert.equal(keepAlive?.status, 200);
    assert.equal(keepAlive?.callId, a);
    assert.equal(keepAlive?.clientRequestId, 'my-request-1');
    assert.equal(keepAlive?.requestId, ka.headers.get('request-id'));
    assert.equal(keepAlive?.fault, null);
    assert.equal(keepAlive?.at, new Date(s.clock.now()).toISOString());
    assert.ok(typeof keepAlive?.latencyMs === 'number' && keepAlive.latencyMs >= 0);
    assert.deepEqual([faulted?.status, faulted?.fault, faulted?.method], [503, fault.id, 'GET']);
    assert.deepEqual([unauth?.status, unauth?.appId, unauth?.callId], [401, null, a]);
  });

  test('filters by call and by app; control-API requests are not journaled', async () => {
    const other = await s.token(OTHER_APP);
    const mine = await s.createCall();
    const theirs = await s.createCall(undefined, other);
    await s.graph(`/v1.0/communications/calls/${theirs}/keepAlive`, { method: 'POST', token: other });
    await s.graph(`/v1.0/communications/calls/${mine}/keepAlive`, { method: 'POST' });
    const byCall = await journal(`?callId=${mine}`);
    assert.deepEqual(
      byCall.map((e) => [e.method, e.path]),
      [['POST', `/v1.0/communications/calls/${mine}/keepAlive`]],
    );
    const byApp = await journal(`?appId=${OTHER_APP.clientId}`);
    assert.deepEqual(
      byApp.map((e) => e.callId),
      [theirs, null],
    );
    assert.deepEqual(await journal(`?appId=${OTHER_APP.clientId}&callId=${mine}`), []);
    assert.ok((await journal()).every((e) => !e.path.startsWith('/_callkeeper')));
    const bad = await fetch(`${s.base}/_callkeeper/requests?$top=0`);
    assert.equal(bad.status, 400);
  });

  test('keeps only the newest N entries', async () => {
    const small = await startServer({ journalSize: 5 });
    try {
      const id = await small.createCall();
      for (let i = 0; i < 120; i++) await small.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' });
      const res = (await (await fetch(`${small.base}/_callkeeper/requests`)).json()) as { value: Entry[] };
      assert.equal(res.value.length, 5);
      assert.ok(res.value.every((e) => e.path.endsWith('/keepAlive')));
    } finally {
      await small.close();
    }
  });
});

describe('reset', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  const state = async () => ({
    calls: ((await (await fetch(`${s.base}/_callkeeper/calls`)).json()) as { value: unknown[] }).value.length,
    deliveries: ((await (await fetch(`${s.base}/_callkeeper/notifications`)).json()) as { value: unknown[] }).value.length,
    faults: ((await (await fetch(`${s.base}/_callkeeper/faults`)).json()) as { value: unknown[] }).value.length,
    journal: ((await (await fetch(`${s.base}/_callkeeper/requests`)).json()) as { value: unknown[] }).value.length,
  });

  test('every call, notification, fault and journal entry goes; apps and keys stay', async () => {
    assert.equal((await fetch(`${s.base}/_callkeeper/apps`, post(NEW_APP))).status, 201);
    const id = await s.createCall();
    await fetch(`${s.base}/_callkeeper/faults`, post({ match: { path: '/nothing' }, effect: { status: 503 } }));
    const before = await state();
    assert.ok(before.calls >= 1 && before.deliveries >= 1 && before.faults === 1 && before.journal >= 1, JSON.stringify(before));
    const token = await s.token();
    const res = await fetch(`${s.base}/_callkeeper/reset`, { method: 'POST' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { reset: true, faultsDeleted: 1, appsRemoved: [] });
    assert.deepEqual(await state(), { calls: 0, deliveries: 0, faults: 0, journal: 0 });
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`, { token })).status, 404, 'the call is gone; the old token still works');
    assert.equal((await requestToken(s.base, NEW_APP as never)).status, 200, 'the app registered at run time stays');
  });

  test('{"apps": true} also forgets apps registered at run time; configured apps stay', async () => {
    const res = await fetch(`${s.base}/_callkeeper/reset`, post({ apps: true }));
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { appsRemoved: string[] }).appsRemoved, [NEW_APP.clientId]);
    assert.equal((await requestToken(s.base, NEW_APP as never)).status, 400, 'its tenant is unknown again');
    assert.equal((await requestToken(s.base, DEFAULT_APP)).status, 200);
    const apps = (await (await fetch(`${s.base}/_callkeeper/apps`)).json()) as { value: { clientId: string }[] };
    assert.ok(!apps.value.some((a) => a.clientId === NEW_APP.clientId));
    assert.equal((await fetch(`${s.base}/_callkeeper/apps`, post(NEW_APP))).status, 201, 'and it can be registered again');
  });

  test('a bad body is a Graph 400', async () => {
    for (const body of [{ apps: 'yes' }, { calls: true }, [1]]) {
      const res = await fetch(`${s.base}/_callkeeper/reset`, post(body));
      assert.equal(res.status, 400, JSON.stringify(body));
    }
  });
});
