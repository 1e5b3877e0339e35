import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { CallService, EXPIRY_STEP_CALLS, EXPIRY_STEP_MS, nextStepSize } from '../src/calls/call-service.js';
import { APP_HANGUP_RESULT, KEEPALIVE_TIMEOUT_RESULT } from '../src/calls/call-types.js';
import { ManualClock } from '../src/clock/clock.js';
import type { ExpiryResults } from '../src/store/calls-port.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import { callBody, type GraphErrorBody, MINUTE, startServer, type TestServer } from './helpers.js';
import { rawRequest } from './raw-http.js';

const keepAlive = (s: TestServer, id: string, init: RequestInit & { token?: string } = {}) =>
  s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST', ...init });

describe('a call and its keepAlive deadline', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  test('create answers 201 with Location and the call as Graph shapes it', async () => {
    const res = await s.graph('/v1.0/communications/calls', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(callBody({ subject: 'standup' })),
    });
    assert.equal(res.status, 201);
    const call = (await res.json()) as Record<string, unknown>;
    assert.match(String(call.id), /^[0-9a-f-]{36}$/);
    assert.equal(res.headers.get('location'), `${s.base}/v1.0/communications/calls/${call.id}`);
    assert.equal(call.state, 'establishing');
    assert.equal(call.direction, 'outgoing');
    assert.equal(call.subject, 'standup');
    assert.equal(call['@odata.context'], `${s.base}/v1.0/$metadata#communications/calls/$entity`);
    assert.equal(call.tenantId, 'ca11ca11-0000-4000-8000-000000000001');
    assert.match(String(call.myParticipantId), /^[0-9a-f-]{36}$/);
    assert.match(String(call.callChainId), /^[0-9a-f-]{36}$/);
    const source = call.source as { identity: { application: { id: string } } };
    assert.equal(source.identity.application.id, 'ca11ca11-0000-4000-8000-00000000b075');
  });

  test('an establishing call becomes established after the establish delay, with no request', async () => {
    const id = await s.createCall();
    await s.advance(999);
    assert.equal((await s.ck.store.get(id))?.state, 'establishing');
    await s.advance(1);
    assert.equal((await s.ck.store.get(id))?.state, 'established');
    const res = await s.graph(`/v1.0/communications/calls/${id}`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { state: string }).state, 'established');
  });

  test('a keepAlive at 44:59 keeps the call past 45:00', async () => {
    const id = await s.createCall();
    await s.advance(44 * MINUTE + 59_000);
    assert.equal((await keepAlive(s, id)).status, 200);
    await s.advance(1000); // 45:00 after creation
    assert.equal((await s.ck.store.get(id))?.state, 'established');
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`)).status, 200);
    // ...and the new deadline is 45 minutes after that keepAlive.
    await s.advance(44 * MINUTE + 59_000 - 1);
    assert.equal((await s.ck.store.get(id))?.state, 'established');
    await s.advance(1);
    assert.equal((await s.ck.store.get(id))?.state, 'terminated');
  });

  test('no keepAlive by 45:00 ends the call then, on time, with no request arriving', async () => {
    const id = await s.createCall();
    const created = s.clock.now();
    // Only the clock moves: no HTTP request reaches the server from here on.
    s.clock.advance(45 * MINUTE - 1);
    await s.ck.scheduler.idle();
    assert.equal((await s.ck.store.get(id))?.state, 'established');
    s.clock.advance(1);
    await s.ck.scheduler.idle();
    const ended = await s.ck.store.get(id);
    assert.equal(ended?.state, 'terminated');
    assert.deepEqual(ended?.resultInfo, KEEPALIVE_TIMEOUT_RESULT);
    assert.equal(ended?.endedAt, created + 45 * MINUTE);
  });

  test('a call is ended at its deadline even when time jumps far past it', async () => {
    const id = await s.createCall();
    const created = s.clock.now();
    await s.advance(10 * 60 * MINUTE);
    const ended = await s.ck.store.get(id);
    assert.equal(ended?.endedAt, created + 45 * MINUTE);
  });

  test('a keepAlive every 15 minutes keeps a call alive for 10 virtual hours', async () => {
    const id = await s.createCall();
    // Tokens live on the wall clock, as a client's cache does: one token serves all 10 virtual hours.
    const token = await s.token();
    for (let i = 1; i <= 40; i++) {
      await s.advance(15 * MINUTE);
      const res = await keepAlive(s, id, { token });
      assert.equal(res.status, 200, `keepAlive #${i} after ${i * 15} minutes`);
    }
    const res = await s.graph(`/v1.0/communications/calls/${id}`, { token });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { state: string }).state, 'established');
  });

  test('once ended, every call route answers exactly Graph 404 8522', async () => {
    const id = await s.createCall();
    await s.advance(45 * MINUTE);
    const token = await s.token();
    const routes: [string, string][] = [
      ['POST', `/v1.0/communications/calls/${id}/keepAlive`],
      ['POST', `/v1.0/communications/calls/${id}/microsoft.graph.keepAlive`],
      ['POST', `/beta/communications/calls/${id}/keepAlive`],
      ['GET', `/v1.0/communications/calls/${id}`],
      ['DELETE', `/v1.0/communications/calls/${id}`],
    ];
    for (const [method, path] of routes) {
      const res = await s.graph(path, { method, token, headers: { 'client-request-id': 'my-client-id-1' } });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.headers.get('content-type')?.split(';')[0], 'application/json');
      const requestId = res.headers.get('request-id');
      assert.match(String(requestId), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      const body = (await res.json()) as GraphErrorBody;
      assert.deepEqual(body, {
        error: {
          code: '8522',
          message: 'Call not found.',
          innerError: {
            date: new Date(s.clock.now()).toISOString().slice(0, 19),
            'request-id': requestId,
            'client-request-id': 'my-client-id-1',
          },
        },
      });
    }
  });

  test('an unknown id is 404 8522 on every route', async () => {
    for (const id of ['00000000-0000-0000-0000-000000000000', 'not-a-guid']) {
      const res = await keepAlive(s, id);
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as GraphErrorBody).error.code, '8522');
    }
  });

  test('keepAlive accepts both action names, both versions, no body, an empty JSON body or {}', async () => {
    const id = await s.createCall();
    const variants: RequestInit[] = [
      {},
      { headers: { 'content-type': 'application/json' }, body: '{}' },
      { headers: { 'content-type': 'text/plain' }, body: '' },
    ];
    for (const path of [`/v1.0/communications/calls/${id}/keepAlive`, `/beta/communications/calls/${id}/microsoft.graph.keepAlive`]) {
      for (const init of variants) {
        const res = await s.graph(path, { method: 'POST', ...init });
        assert.equal(res.status, 200, `${path} ${JSON.stringify(init)}`);
        assert.equal(await res.text(), '');
        assert.equal(res.headers.get('content-length'), '0');
      }
      // What the Graph JS client sends: JSON content type, Content-Length 0, no body.
      const token = await s.token();
      const raw = await rawRequest(
        s.base,
        `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(raw.status, 200, raw.body);
    }
  });

  test('keepAlive with any other body is 400 and does not keep the call alive', async () => {
    const id = await s.createCall();
    await s.advance(30 * MINUTE);
    for (const body of ['{"a":1}', '[]', '"x"', '1']) {
      const res = await keepAlive(s, id, { headers: { 'content-type': 'application/json' }, body });
      assert.equal(res.status, 400, body);
      assert.equal(((await res.json()) as GraphErrorBody).error.code, 'BadRequest');
    }
    await s.advance(15 * MINUTE);
    assert.equal((await s.ck.store.get(id))?.state, 'terminated');
  });

  test('DELETE hangs up: 204, the call is terminated as a normal hang-up, then 404', async () => {
    const id = await s.createCall();
    const res = await s.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE' });
    assert.equal(res.status, 204);
    assert.equal(await res.text(), '');
    const ended = await s.ck.store.get(id);
    assert.equal(ended?.state, 'terminated');
    assert.deepEqual(ended?.resultInfo, APP_HANGUP_RESULT);
    assert.equal((await keepAlive(s, id)).status, 404);
  });

  test('restarting on the same deadline: a keepAlive exactly at the deadline is too late', async () => {
    const id = await s.createCall();
    s.clock.advance(45 * MINUTE); // the scheduler has not run yet
    assert.equal((await keepAlive(s, id)).status, 404);
  });
});

describe('ended calls are purged after the retention', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ endedRetentionMs: 10 * MINUTE });
  });
  after(() => s.close());

  test('each ended call stays for the retention, then the sweep purges it, however many sweeps ran between', async () => {
    const hangUp = async (id: string) =>
      assert.equal((await s.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE' })).status, 204);
    const a = await s.createCall();
    await hangUp(a);
    await s.advance(5 * MINUTE);
    const b = await s.createCall();
    await hangUp(b);
    // Sweeps run every second meanwhile (establishing calls, deadlines of other calls).
    for (let i = 0; i < 5; i++) await s.createCall();
    await s.advance(5 * MINUTE - 1);
    assert.ok(await s.ck.store.get(a), 'kept for the retention');
    await s.advance(1);
    assert.equal(await s.ck.store.get(a), undefined, 'purged once the retention is over');
    assert.ok(await s.ck.store.get(b), 'a later end stays for its own retention');
    await s.advance(5 * MINUTE - 1);
    assert.ok(await s.ck.store.get(b));
    await s.advance(1);
    assert.equal(await s.ck.store.get(b), undefined);
  });
});

describe('a mass expiry is ended in steps sized by time', () => {
  const T0 = Date.UTC(2026, 0, 1);
  /** A real store whose expireDue calls are recorded (limit asked, calls ended). */
  const recorded = (store: SqliteStore) => {
    const steps: { limit: number; ended: number }[] = [];
    const port = new Proxy(store, {
      get(target, key) {
        if (key === 'expireDue')
          return async (now: number, limit: number, results: ExpiryResults) => {
            const ended = await target.expireDue(now, limit, results);
            steps.push({ limit, ended: ended.length });
            return ended;
          };
        const v = Reflect.get(target, key) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    return { port, steps };
  };
  /** `count` calls on one deadline (T0 + 1000), then one sweep whose steps take `stepMs` (wall) each, in turn. */
  const sweep = async (count: number, ...stepMs: number[]) => {
    const store = new SqliteStore();
    for (let i = 0; i < count; i++)
      await store.create({
        id: randomUUID(),
        owner: { appId: 'app', tenantId: 'tenant' },
        state: 'established',
        direction: 'outgoing',
        createdAt: T0,
        deadline: T0 + 1000,
        establishAt: null,
        resource: { callbackUri: 'https://bot.example/cb' },
      });
    const { port, steps } = recorded(store);
    // Each step reads the step clock twice (before and after): step i "took" stepMs[i] (the last, from then on).
    let wall = 0;
    let reads = 0;
    const took = () => stepMs[Math.min(Math.floor(reads++ / 2), stepMs.length - 1)] ?? 0;
    const service = new CallService(port, new ManualClock(T0 + 1000), {
      keepAliveTimeoutMs: 45 * MINUTE,
      establishDelayMs: 1000,
      strictCallbackUri: false,
      endedRetentionMs: 60 * MINUTE,
      stepClock: () => (wall += took()),
    });
    const changed = await service.processDue();
    const { active, ended } = await store.counts();
    await store.close();
    return { changed, active, ended, steps, service };
  };

  test('fast steps grow until a step takes its share of time (up to the cap); every call ends once', async () => {
    const r = await sweep(3_000, 1);
    assert.deepEqual(r.steps, [
      { limit: EXPIRY_STEP_CALLS.first, ended: 200 },
      { limit: 200 * EXPIRY_STEP_MS, ended: 2_000 },
      { limit: EXPIRY_STEP_CALLS.max, ended: 800 },
    ]);
    assert.deepEqual([r.changed, r.active, r.ended], [3_000, 0, 3_000]);
  });

  test('a step that took longer than its share shrinks the next, down to the 200 of old', async () => {
    // 200 in 1 ms: 2,000 next; those in 40 ms: 500; those in 40 ms: 125, so 200 (the floor).
    const r = await sweep(3_100, 1, 40);
    assert.deepEqual(
      r.steps.map((s) => s.limit),
      [200, 2_000, 500, 200, 200, 200],
    );
    assert.deepEqual(
      r.steps.map((s) => s.ended),
      [200, 2_000, 500, 200, 200, 0],
    );
    assert.deepEqual([r.changed, r.active, r.ended], [3_100, 0, 3_100]);
  });

  test('the step size is bounded both ways', () => {
    assert.equal(nextStepSize(200, 0.001, EXPIRY_STEP_MS), EXPIRY_STEP_CALLS.max);
    assert.equal(nextStepSize(200, 0, EXPIRY_STEP_MS), EXPIRY_STEP_CALLS.max);
    assert.equal(nextStepSize(200, 10_000, EXPIRY_STEP_MS), EXPIRY_STEP_CALLS.min);
    assert.equal(nextStepSize(200, 5, 10), 400);
  });
});
