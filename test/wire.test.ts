import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type GraphErrorBody, startServer, type TestServer } from './helpers.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("Graph's wire details", () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  function assertWireHeaders(res: Response, clientRequestId?: string): void {
    const requestId = res.headers.get('request-id');
    assert.match(String(requestId), GUID);
    assert.equal(res.headers.get('client-request-id'), clientRequestId ?? requestId);
    const diag = JSON.parse(String(res.headers.get('x-ms-ags-diagnostic'))) as { ServerInfo: Record<string, string> };
    for (const k of ['DataCenter', 'Slice', 'Ring', 'ScaleUnit', 'RoleInstance']) assert.equal(typeof diag.ServerInfo[k], 'string', k);
    assert.equal(res.headers.get('strict-transport-security'), 'max-age=31536000');
    assert.ok(!Number.isNaN(Date.parse(String(res.headers.get('date')))));
  }

  test('every kind of response carries request-id, client-request-id, x-ms-ags-diagnostic, HSTS and Date', async () => {
    const id = await s.createCall();
    const responses = [
      await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' }),
      await s.graph(`/v1.0/communications/calls/${id}`),
      await s.graph('/v1.0/communications/calls/unknown/keepAlive', { method: 'POST' }),
      await fetch(`${s.base}/v1.0/communications/calls/${id}`),
      await fetch(`${s.base}/nowhere`),
      await fetch(`${s.base}/_callkeeper/health`),
    ];
    for (const res of responses) assertWireHeaders(res);
  });

  test("the client's client-request-id is echoed, in the header and in innerError", async () => {
    const mine = '5c0ffee0-0000-4000-8000-000000000001';
    const res = await s.graph('/v1.0/communications/calls/unknown', { headers: { 'client-request-id': mine } });
    assertWireHeaders(res, mine);
    const body = (await res.json()) as GraphErrorBody;
    assert.equal(body.error.innerError['client-request-id'], mine);
    assert.equal(body.error.innerError['request-id'], res.headers.get('request-id'));
  });

  test('a client-request-id that is not a sane header value is replaced by the request-id', async () => {
    const res = await s.graph('/v1.0/communications/calls/unknown', { headers: { 'client-request-id': 'x'.repeat(500) } });
    assertWireHeaders(res);
  });

  test('each response has its own request-id', async () => {
    const a = await s.graph('/v1.0/communications/calls/unknown');
    const b = await s.graph('/v1.0/communications/calls/unknown');
    assert.notEqual(a.headers.get('request-id'), b.headers.get('request-id'));
  });

  test('keepAlive 200 is empty text/plain as Graph answers it', async () => {
    const id = await s.createCall();
    const res = await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain');
    assert.equal(res.headers.get('content-length'), '0');
  });

  test('the error body has exactly code, message and innerError {date, request-id, client-request-id}', async () => {
    const res = await fetch(`${s.base}/v1.0/communications/calls/x`);
    const body = (await res.json()) as GraphErrorBody;
    assert.deepEqual(Object.keys(body), ['error']);
    assert.deepEqual(Object.keys(body.error), ['code', 'message', 'innerError']);
    assert.deepEqual(Object.keys(body.error.innerError), ['date', 'request-id', 'client-request-id']);
    assert.match(body.error.innerError.date, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
  });
});
