/**
 * Fault rules and throttling over real HTTP: every rule field (match by method, path glob,
 * appId and callId; rate, count, until; target) and every effect (status with Graph's own
 * bodies and headers, retryAfter, latencyMs in real time, reset cutting the connection).
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, beforeEach, describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { MINUTE, OTHER_APP, startServer, type TestServer } from './helpers.js';

interface Rule {
  id: string;
  target: string;
  match: Record<string, string>;
  effect: Record<string, unknown>;
  rate: number;
  count: number | null;
  remaining: number | null;
  until: string | null;
}

interface ErrorBody {
  error: { code: string; message: string; innerError: Record<string, string> };
}

const json = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

describe('fault rules', () => {
  let s: TestServer;
  const draws: number[] = [];
  before(async () => {
    s = await startServer({ random: () => draws.shift() ?? 0 });
  });
  after(() => s.close());
  beforeEach(async () => {
    await fetch(`${s.base}/_callkeeper/faults`, { method: 'DELETE' });
    draws.length = 0;
  });

  const addFault = async (rule: unknown): Promise<Rule> => {
    const res = await fetch(`${s.base}/_callkeeper/faults`, json(rule));
    assert.equal(res.status, 201, await res.clone().text());
    return (await res.json()) as Rule;
  };
  const keepAlive = (id: string, token?: string) =>
    s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST', ...(token ? { token } : {}) });

  test('POST returns the rule with an id; GET lists it; DELETE {id} and DELETE all remove them', async () => {
    const a = await addFault({ match: { path: '/communications/calls/*/keepAlive' }, effect: { status: 503 } });
    assert.match(a.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { target: a.target, match: a.match, effect: a.effect, rate: a.rate, count: a.count, until: a.until },
      { target: 'graph', match: { path: '/communications/calls/*/keepAlive' }, effect: { status: 503 }, rate: 1, count: null, until: null },
    );
    const b = await addFault({ effect: { latencyMs: 1 }, count: 3 });
    const list = (await (await fetch(`${s.base}/_callkeeper/faults`)).json()) as { value: Rule[] };
    assert.deepEqual(
      list.value.map((r) => r.id),
      [a.id, b.id],
    );
    assert.equal((await fetch(`${s.base}/_callkeeper/faults/${a.id}`, { method: 'DELETE' })).status, 204);
    const again = await fetch(`${s.base}/_callkeeper/faults/${a.id}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal(((await again.json()) as ErrorBody).error.code, 'NotFound');
    const cleared = await fetch(`${s.base}/_callkeeper/faults`, { method: 'DELETE' });
    assert.deepEqual(await cleared.json(), { deleted: 1 });
    assert.deepEqual(await (await fetch(`${s.base}/_callkeeper/faults`)).json(), { value: [] });
  });

  test('a bad rule gets a Graph 400 naming the field, never a 5xx', async () => {
    for (const [rule, field] of [
      [{ effect: { status: 418 } }, 'effect.status'],
      [{ effect: {} }, 'effect'],
      [{ match: { path: 'calls' }, effect: { status: 503 } }, 'match.path'],
      [{ effect: { status: 503 }, rate: 2 }, 'rate'],
      [{ effect: { status: 503 }, count: 0 }, 'count'],
      [{ effect: { status: 503 }, until: 'tomorrow' }, 'until'],
      [{ effect: { latencyMs: -1 } }, 'effect.latencyMs'],
      [{ effect: { reset: true, status: 503 } }, 'effect.reset'],
      [{ effect: { retryAfter: 5 } }, 'effect.retryAfter'],
      [{ effect: { status: 503 }, target: 'bots' }, 'target'],
      [{ effect: { status: 503 }, colour: 'red' }, 'colour'],
      [[1, 2], 'fault rule'],
    ] as const) {
      const res = await fetch(`${s.base}/_callkeeper/faults`, json(rule));
      assert.equal(res.status, 400, JSON.stringify(rule));
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, 'BadRequest');
      assert.ok(body.error.message.includes(field), `${body.error.message} names ${field}`);
    }
  });

  test("each status answers with Graph's body and headers; retryAfter sets Retry-After", async () => {
    const id = await s.createCall();
    const expected = {
      429: ['TooManyRequests', 'Please retry again later.'],
      500: ['generalException', 'An unspecified error has occurred.'],
      502: ['BadGateway', 'The gateway received an invalid response from the service that handles the request.'],
      503: ['serviceNotAvailable', 'The service is not available. Try the request again after a delay. There may be a Retry-After header.'],
      504: ['timeout', 'The operation timed out before it could be completed.'],
    } as const;
    for (const [status, [code, message]] of Object.entries(expected)) {
      await fetch(`${s.base}/_callkeeper/faults`, { method: 'DELETE' });
      await addFault({ match: { callId: id }, effect: { status: Number(status), retryAfter: 7 } });
      const res = await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, {
        method: 'POST',
        headers: { 'client-request-id': 'c0ffee00-0000-4000-8000-000000000001' },
      });
      assert.equal(res.status, Number(status));
      assert.equal(res.headers.get('retry-after'), '7');
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.match(res.headers.get('request-id') ?? '', /^[0-9a-f-]{36}$/);
      assert.ok(res.headers.get('x-ms-ags-diagnostic'));
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.error.code, code);
      assert.equal(body.error.message, message);
      assert.equal(body.error.innerError['request-id'], res.headers.get('request-id'));
      assert.equal(body.error.innerError['client-request-id'], 'c0ffee00-0000-4000-8000-000000000001');
      assert.match(body.error.innerError.date ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
      if (status === '429') {
        assert.equal(body.error.innerError.code, '429');
        assert.equal(body.error.innerError.status, '429');
      } else assert.equal(body.error.innerError.code, undefined);
    }
    await fetch(`${s.base}/_callkeeper/faults`, { method: 'DELETE' });
    await addFault({ match: { callId: id }, effect: { status: 503 } });
    const bare = await keepAlive(id);
    assert.equal(bare.status, 503);
    assert.equal(bare.headers.get('retry-after'), null, 'no retryAfter, no Retry-After');
  });

  test('a faulted keepAlive changes nothing: the deadline stays where it was', async () => {
    const id = await s.createCall();
    const deadline = async () =>
      ((await (await fetch(`${s.base}/_callkeeper/calls/${id}`)).json()) as { deadlineDateTime: string }).deadlineDateTime;
    const d0 = await deadline();
    await s.advance(MINUTE);
    await addFault({ match: { callId: id }, effect: { status: 503 }, count: 1 });
    assert.equal((await keepAlive(id)).status, 503);
    assert.equal(await deadline(), d0);
    assert.equal((await keepAlive(id)).status, 200);
    assert.notEqual(await deadline(), d0);
  });

  test('latencyMs delays the answer in real time, then the request proceeds', async () => {
    const id = await s.createCall();
    await addFault({ match: { callId: id }, effect: { latencyMs: 400 } });
    const t0 = performance.now();
    const slow = await keepAlive(id);
    const slowMs = performance.now() - t0;
    assert.equal(slow.status, 200);
    assert.ok(slowMs >= 390, `answered after ${slowMs} ms`);
    await fetch(`${s.base}/_callkeeper/faults`, { method: 'DELETE' });
    await addFault({ match: { callId: id }, effect: { latencyMs: 300, status: 504 } });
    const t1 = performance.now();
    const late = await keepAlive(id);
    assert.equal(late.status, 504);
    assert.ok(performance.now() - t1 >= 290);
  });

  test('reset destroys the connection: the client sees a socket error, no response', async () => {
    const id = await s.createCall();
    await addFault({ match: { callId: id }, effect: { reset: true }, count: 1 });
    await assert.rejects(keepAlive(id), (err: Error & { cause?: { code?: string } }) => {
      assert.equal(err.name, 'TypeError');
      assert.match(String(err.cause?.code ?? err.cause), /UND_ERR_SOCKET|ECONNRESET|other side closed/);
      return true;
    });
    assert.equal((await keepAlive(id)).status, 200, 'the next request is served');
  });

  test('count: a rule applies that many times, then is gone; GET shows what remains', async () => {
    const id = await s.createCall();
    const rule = await addFault({ match: { callId: id }, effect: { status: 500 }, count: 2 });
    assert.equal((await keepAlive(id)).status, 500);
    const mid = (await (await fetch(`${s.base}/_callkeeper/faults`)).json()) as { value: Rule[] };
    assert.equal(mid.value[0]?.remaining, 1);
    assert.equal((await keepAlive(id)).status, 500);
    assert.equal((await keepAlive(id)).status, 200);
    const spent = (await (await fetch(`${s.base}/_callkeeper/faults`)).json()) as { value: Rule[] };
    assert.ok(!spent.value.some((r) => r.id === rule.id));
  });

  test('rate: each matching request is faulted with that probability (the draw is injected)', async () => {
    const id = await s.createCall();
    await addFault({ match: { callId: id }, effect: { status: 502 }, rate: 0.25 });
    draws.push(0.1, 0.9, 0.3, 0.2);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await keepAlive(id)).status);
    assert.deepEqual(statuses, [502, 200, 200, 502]);
    await fetch(`${s.base}/_callkeeper/faults`, { method: 'DELETE' });
    await addFault({ match: { callId: id }, effect: { status: 502 }, rate: 0 });
    draws.push(0);
    assert.equal((await keepAlive(id)).status, 200, 'rate 0 never applies');
  });

  test('until: a rule stops applying at that (virtual) time', async () => {
    const id = await s.createCall();
    const until = new Date(s.clock.now() + 5 * MINUTE).toISOString();
    await addFault({ match: { callId: id }, effect: { status: 503 }, until });
    assert.equal((await keepAlive(id)).status, 503);
    await s.advance(4 * MINUTE);
    assert.equal((await keepAlive(id)).status, 503);
    await s.advance(MINUTE);
    assert.equal((await keepAlive(id)).status, 200);
    assert.deepEqual(await (await fetch(`${s.base}/_callkeeper/faults`)).json(), { value: [] });
  });

  test('match: method, path glob, appId and callId must all hold', async () => {
    const a = await s.createCall();
    const b = await s.createCall();
    const other = await s.token(OTHER_APP);
    const c = await s.createCall(undefined, other);
    await addFault({
      match: { method: 'post', path: '/communications/calls/*/keepAlive', appId: DEFAULT_APP.clientId, callId: a },
      effect: { status: 503 },
    });
    assert.equal((await keepAlive(a)).status, 503);
    assert.equal((await keepAlive(b)).status, 200, 'another call');
    assert.equal((await s.graph(`/v1.0/communications/calls/${a}`)).status, 200, 'another method and path');
    await fetch(`${s.base}/_callkeeper/faults`, { method: 'DELETE' });
    await addFault({ match: { appId: OTHER_APP.clientId }, effect: { status: 503 } });
    assert.equal((await keepAlive(c, other)).status, 503);
    assert.equal((await keepAlive(a)).status, 200, 'another app');
    await fetch(`${s.base}/_callkeeper/faults`, { method: 'DELETE' });
    // ** crosses segments; a single * does not; the beta and the cloud-prefixed paths match too.
    await addFault({ match: { path: '/communications/**' }, effect: { status: 504 }, count: 3 });
    assert.equal((await keepAlive(a)).status, 504);
    assert.equal((await s.graph(`/beta/communications/calls/${a}`)).status, 504);
    assert.equal(
      (await s.graph(`/usgov/v1.0/communications/calls/${a}`)).status,
      401,
      'auth comes first: a global token is refused by US Gov',
    );
    await fetch(`${s.base}/_callkeeper/faults`, { method: 'DELETE' });
    await addFault({ match: { path: '/communications/*' }, effect: { status: 504 } });
    assert.equal((await keepAlive(a)).status, 200, '* stays within a segment');
    assert.equal(
      (await s.graph('/v1.0/communications/calls', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status,
      504,
    );
  });

  test('the oldest matching rule wins; rules for notifications leave Graph requests alone', async () => {
    const id = await s.createCall();
    await addFault({ target: 'notifications', match: { callId: id }, effect: { status: 503 } });
    assert.equal((await keepAlive(id)).status, 200);
    await addFault({ match: { callId: id }, effect: { status: 502 } });
    await addFault({ match: { callId: id }, effect: { status: 504 } });
    assert.equal((await keepAlive(id)).status, 502);
  });
});

describe('fault rules from the configuration', () => {
  test('rules given at start are armed with stable ids', async () => {
    const s = await startServer({
      faults: [{ match: { path: '/communications/calls' }, effect: { status: 503, retryAfter: 2 }, count: 1 }],
    });
    try {
      const list = (await (await fetch(`${s.base}/_callkeeper/faults`)).json()) as { value: Rule[] };
      assert.deepEqual(
        list.value.map((r) => [r.id, r.count]),
        [['config-1', 1]],
      );
      const res = await s.graph('/v1.0/communications/calls', json({}));
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '2');
    } finally {
      await s.close();
    }
  });
  test('a bad rule in the configuration stops the start with the reason', async () => {
    await assert.rejects(startServer({ faults: [{ effect: { status: 200 } }] }), /effect\.status/);
  });
});

describe('throttling', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ throttle: { limit: 3, windowMs: 15_000 } });
  });
  after(() => s.close());

  test('past the limit in a window: 429 TooManyRequests with Retry-After to the window end, per app', async () => {
    // Start at a window's beginning, so the Retry-After is known.
    s.clock.advance(15_000 - (s.clock.now() % 15_000));
    const id = await s.createCall(); // 1
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`)).status, 200); // 2
    s.clock.advance(5_000);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' })).status, 200); // 3
    const limited = await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '10');
    const body = (await limited.json()) as ErrorBody;
    assert.equal(body.error.code, 'TooManyRequests');
    assert.equal(body.error.innerError.status, '429');
    const other = await s.token(OTHER_APP);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`, { token: other })).status, 404, 'another app has its own count');
    s.clock.advance(10_000);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`)).status, 200, 'a new window');
  });

  test('the journal marks throttled requests', async () => {
    const list = (await (await fetch(`${s.base}/_callkeeper/requests`)).json()) as { value: { status: number; fault: string | null }[] };
    assert.ok(list.value.some((e) => e.status === 429 && e.fault === 'throttle'));
  });
});
