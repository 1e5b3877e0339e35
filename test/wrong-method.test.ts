import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type GraphErrorBody, startServer, type TestServer } from './helpers.js';

// A method a path has no route for is answered from the not-found handler through a table of
// its own (src/http/wrong-method.ts) rather than by a route per method. What a client sees must
// be what it saw when each such method had its route: the cases below are the ones where a
// table looked up only after the router misses would answer otherwise.

const CONTROL_TOKEN = 'wrong-method-control-token';

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string; allow: string | null }> {
  const body = (await res.json()) as GraphErrorBody;
  return { status: res.status, code: body.error.code, message: body.error.message, allow: res.headers.get('allow') };
}

describe('wrong methods: 405 from the wrong-method table, as from a route of their own', () => {
  let s: TestServer;
  let token: string;
  before(async () => {
    s = await startServer({ controlToken: CONTROL_TOKEN });
    token = await s.token();
  });
  after(() => s.close());

  test('a literal segment still wins over a parameter: GET .../calls/logTeleconferenceDeviceQuality is 405, not GET /calls/{id}', async () => {
    // The action is POST only; GET /calls/:id would take the URL as a call id and answer 404.
    for (const name of ['logTeleconferenceDeviceQuality', 'microsoft.graph.logTeleconferenceDeviceQuality']) {
      const e = await errorOf(await s.graph(`/v1.0/communications/calls/${name}`, { method: 'GET', token }));
      assert.equal(e.status, 405, e.message);
      assert.equal(e.code, 'MethodNotAllowed');
    }
  });

  test('PATCH and DELETE .../calls/$count are 405 before the token check, not the 501 and 401 of /calls/{id}', async () => {
    for (const method of ['PATCH', 'DELETE', 'POST']) {
      const res = await fetch(`${s.base}/v1.0/communications/calls/$count`, { method });
      const e = await errorOf(res);
      assert.equal(e.status, 405, `${method}: ${e.message}`);
      assert.match(e.message, new RegExp(`'${method}' is not allowed`));
    }
  });

  test('a route added for one shadowed path is a rival of the next: POST .../calls/$count keeps its own answer', async () => {
    // POST /calls/:id is a 405 route (logTeleconferenceDeviceQuality's POST would reach it);
    // if routes added that way did not count as rivals, POST /calls/$count would reach it too
    // and answer with /calls/{id}'s Allow.
    const onCall = await errorOf(await s.graph('/v1.0/communications/calls/some-id', { method: 'POST', token }));
    assert.equal(onCall.status, 405);
    assert.equal(onCall.allow, 'GET, DELETE, HEAD');
    const onCount = await errorOf(await s.graph('/v1.0/communications/calls/$count', { method: 'POST', token }));
    assert.equal(onCount.status, 405);
    assert.notEqual(onCount.allow, 'GET, DELETE, HEAD');
    // Its one documented method, GET, is not implemented (501): Allow is empty, and the message
    // says none rather than "allowed: .".
    assert.equal(onCount.allow, '');
    assert.match(onCount.message, /'POST' is not allowed on this resource; allowed: none\.$/);
    assert.equal((await s.graph('/v1.0/communications/calls/$count', { token })).status, 501);
  });

  test('under /_callkeeper the control guard answers first, as on the path: 401 without the token, 405 with it', async () => {
    const without = await errorOf(await fetch(`${s.base}/_callkeeper/clock`, { method: 'DELETE' }));
    assert.equal(without.status, 401, without.message);
    const withToken = await errorOf(
      await fetch(`${s.base}/_callkeeper/clock`, { method: 'DELETE', headers: { 'x-callkeeper-control-token': CONTROL_TOKEN } }),
    );
    assert.equal(withToken.status, 405);
    assert.equal(withToken.allow, 'GET, HEAD');
    // And the guard's own checks: a body that is not JSON is refused before the 405.
    const form = await fetch(`${s.base}/_callkeeper/clock`, {
      method: 'PUT',
      headers: { 'x-callkeeper-control-token': CONTROL_TOKEN, 'content-type': 'text/plain' },
      body: 'x',
    });
    assert.equal(form.status, 415);
  });

  test('a parameter over the router limit is 400, as for a method the path has, not 404', async () => {
    const long = 'x'.repeat(5000);
    for (const method of ['GET', 'PUT']) {
      const e = await errorOf(await s.graph(`/v1.0/communications/calls/${long}`, { method, token }));
      assert.equal(e.status, 400, `${method}: ${e.message.slice(0, 200)}`);
      assert.match(e.message, /exceeding the max param length/);
    }
  });

  test('the journal and /metrics name what a 405 was for: the call id, the route', async () => {
    const id = await s.createCall();
    const res = await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'GET', token });
    assert.equal(res.status, 405);
    const journal = (await (
      await fetch(`${s.base}/_callkeeper/requests`, { headers: { 'x-callkeeper-control-token': CONTROL_TOKEN } })
    ).json()) as { value: { method: string; status: number; callId: string | null; requestId: string }[] };
    const entry = journal.value.find((e) => e.requestId === res.headers.get('request-id'));
    assert.equal(entry?.status, 405);
    assert.equal(entry?.callId, id);
    const metrics = await (await fetch(`${s.base}/metrics`, { headers: { 'x-callkeeper-control-token': CONTROL_TOKEN } })).text();
    assert.match(
      metrics,
      /callkeeper_http_requests_total\{route="\/v1\.0\/communications\/calls\/:id\/keepAlive",method="GET",status="405"\} 1/,
    );
  });

  test('methods that are not Graph methods, and URLs that are no path, still get the 404s they got', async () => {
    const options = await errorOf(await s.graph('/v1.0/communications/calls', { method: 'OPTIONS', token }));
    assert.equal(options.status, 400);
    const nothing = await errorOf(await s.graph('/v1.0/communications/nothing', { method: 'PUT', token }));
    assert.equal(nothing.status, 400);
    assert.match(nothing.message, /segment 'nothing'/);
  });
});
