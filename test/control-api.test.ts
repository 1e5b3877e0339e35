import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { type GraphErrorBody, MINUTE, startServer, type TestServer } from './helpers.js';

interface ControlCall {
  id: string;
  state: string;
  lastKeepAliveDateTime: string | null;
  deadlineDateTime: string | null;
  timeLeftMs: number | null;
  resultInfo: { code: number; subcode: number; message: string } | null;
}

describe('control API', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  const control = (path: string, init?: RequestInit) => fetch(`${s.base}/_callkeeper${path}`, init);
  const advance = (ms: unknown) =>
    control('/clock/advance', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ms }) });

  test('GET /clock tells virtual time; POST /clock/advance moves it and ends due calls before answering', async () => {
    const before = (await (await control('/clock')).json()) as { epochMs: number; now: string };
    assert.equal(before.epochMs, s.clock.now());
    const id = await s.createCall();
    const res = await advance(45 * MINUTE);
    assert.equal(res.status, 200);
    const afterClock = (await res.json()) as { epochMs: number };
    assert.equal(afterClock.epochMs, before.epochMs + 45 * MINUTE);
    const call = (await (await control(`/calls/${id}`)).json()) as ControlCall;
    assert.equal(call.state, 'terminated');
    assert.deepEqual(call.resultInfo, { code: 408, subcode: 8537, message: 'Keep Alive timeout, cleaned up inactive call.' });
  });

  test('advance takes a duration string too, and refuses bad values with a Graph 400', async () => {
    const t = s.clock.now();
    assert.equal((await advance('90s')).status, 200);
    assert.equal(s.clock.now(), t + 90_000);
    for (const bad of [-1, 1.5, 'soon', null, 1e15]) {
      const res = await advance(bad);
      assert.equal(res.status, 400, String(bad));
      assert.equal(((await res.json()) as GraphErrorBody).error.code, 'BadRequest');
    }
    const noBody = await control('/clock/advance', { method: 'POST' });
    assert.equal(noBody.status, 400);
  });

  test('GET /calls lists each call with state, last keepAlive, deadline and time left', async () => {
    const id = await s.createCall();
    await s.advance(5 * MINUTE);
    await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' });
    await s.advance(MINUTE);
    const list = (await (await control('/calls?state=active')).json()) as { value: ControlCall[] };
    const call = list.value.find((c) => c.id === id);
    assert.ok(call);
    assert.equal(call.state, 'established');
    assert.equal(call.lastKeepAliveDateTime, new Date(s.clock.now() - MINUTE).toISOString());
    assert.equal(call.deadlineDateTime, new Date(s.clock.now() - MINUTE + 45 * MINUTE).toISOString());
    assert.equal(call.timeLeftMs, 44 * MINUTE);
    const ended = (await (await control('/calls?state=ended')).json()) as { value: ControlCall[] };
    assert.ok(ended.value.every((c) => c.state === 'terminated'));
    assert.ok(!ended.value.some((c) => c.id === id));
  });

  test('GET /calls pages with $top and @odata.nextLink', async () => {
    for (let i = 0; i < 5; i++) await s.createCall();
    const seen = new Set<string>();
    let url: string | undefined = `${s.base}/_callkeeper/calls?$top=2`;
    let pages = 0;
    while (url) {
      const page = (await (await fetch(url)).json()) as { value: ControlCall[]; '@odata.nextLink'?: string };
      assert.ok(page.value.length <= 2);
      for (const c of page.value) seen.add(c.id);
      url = page['@odata.nextLink'];
      pages++;
    }
    const all = (await (await control('/calls?$top=1000')).json()) as { value: ControlCall[] };
    assert.equal(seen.size, all.value.length);
    assert.ok(pages >= 3);
    for (const q of ['$top=0', '$top=abc', 'state=bogus', '$skiptoken=%%%']) {
      const res = await control(`/calls?${q}`);
      assert.equal(res.status, 400, q);
    }
  });

  test('POST /calls/{id}/expire ends it now as a keepAlive timeout; unknown ids are 404 8522', async () => {
    const id = await s.createCall();
    const res = await control(`/calls/${id}/expire`, { method: 'POST' });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as ControlCall).resultInfo?.subcode, 8537);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' })).status, 404);
    const again = await control(`/calls/${id}/expire`, { method: 'POST' });
    assert.equal(again.status, 404);
    assert.equal(((await again.json()) as GraphErrorBody).error.code, '8522');
  });

  test('GET /apps gives the dev credentials a script needs to get a token', async () => {
    const apps = (await (await control('/apps')).json()) as {
      value: { tenantId: string; clientId: string; clientSecret: string; tokenEndpoint: string; scope: string }[];
    };
    const app = apps.value.find((a) => a.clientId === DEFAULT_APP.clientId);
    assert.ok(app);
    const res = await fetch(app.tokenEndpoint, {
      method: 'POST',
      body: new URLSearchParams({
        client_id: app.clientId,
        client_secret: app.clientSecret,
        scope: app.scope,
        grant_type: 'client_credentials',
      }),
    });
    assert.equal(res.status, 200);
  });

  test('GET /health reports the store and call counts', async () => {
    const health = (await (await control('/health')).json()) as { status: string; store: string; calls: { active: number; ended: number } };
    assert.equal(health.status, 'ok');
    assert.equal(health.store, 'memory');
    assert.equal(health.calls.active, (await s.ck.store.counts()).active);
  });
});
