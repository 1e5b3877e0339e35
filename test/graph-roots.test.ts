import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { CLOUDS } from '../src/auth/clouds.js';
import { callBody, type GraphErrorBody, requestToken, startServer, type TestServer } from './helpers.js';

// Each Graph path is one route for the global root and one for every prefixed cloud, the
// cloud and version being route parameters (src/http/graph-roots.ts). What a client sees
// must be what it saw when each cloud and version had routes of their own.

/** HEAD has no body for fetch to read: the status and headers over node:http. */
function head(url: string, token?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'HEAD', headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject).end();
  });
}

describe('Graph roots: clouds and versions as route parameters', () => {
  let s: TestServer;
  const tokens: Record<string, string> = {};
  const calls: Record<string, string> = {};
  before(async () => {
    s = await startServer();
    for (const cloud of CLOUDS) {
      const res = await requestToken(s.base, DEFAULT_APP, `${cloud.graphResource}/.default`, cloud.prefix);
      tokens[cloud.name] = ((await res.json()) as { access_token: string }).access_token;
    }
    for (const cloud of CLOUDS.filter((c) => c.callsAvailable)) {
      const res = await s.graph(`${cloud.prefix}/v1.0/communications/calls`, {
        method: 'POST',
        token: tokens[cloud.name] as string,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(callBody()),
      });
      assert.equal(res.status, 201, cloud.name);
      calls[cloud.name] = ((await res.json()) as { id: string }).id;
    }
  });
  after(() => s.close());

  for (const [prefix, cloud] of [
    ['/usgov', 'usgov'],
    ['/dod', 'dod'],
    ['', 'global'],
  ] as const) {
    for (const version of ['v1.0', 'beta']) {
      const root = `${prefix}/${version}`;
      test(`${root}: a wrong method is 405 with Allow, before the token check, HEAD too`, async () => {
        const id = calls[cloud] as string;
        const res = await fetch(`${s.base}${root}/communications/calls/${id}/keepAlive`, { method: 'PUT' });
        assert.equal(res.status, 405);
        assert.equal(res.headers.get('allow'), 'POST');
        assert.equal(
          ((await res.json()) as GraphErrorBody).error.message,
          "The HTTP method 'PUT' is not allowed on this resource; allowed: POST.",
        );
        const onCall = await fetch(`${s.base}${root}/communications/calls/${id}`, { method: 'POST' });
        assert.equal(onCall.status, 405);
        assert.equal(onCall.headers.get('allow'), 'GET, DELETE, HEAD');
        const h = await head(`${s.base}${root}/communications/calls/${id}/keepAlive`);
        assert.equal(h.status, 405);
        assert.equal(h.headers.allow, 'POST');
        assert.equal(h.body, '');
      });

      test(`${root}: a documented but unserved method is 501 after the cloud's own token check`, async () => {
        const url = `${s.base}${root}/communications/calls/${calls[cloud]}`;
        assert.equal((await fetch(url, { method: 'PATCH' })).status, 401, 'no token');
        const other = cloud === 'global' ? 'usgov' : 'global';
        assert.equal((await s.graph(url.slice(s.base.length), { method: 'PATCH', token: tokens[other] as string })).status, 401, other);
        const res = await s.graph(url.slice(s.base.length), { method: 'PATCH', token: tokens[cloud] as string });
        assert.equal(res.status, 501);
        assert.equal(((await res.json()) as GraphErrorBody).error.code, 'NotImplemented');
        // HEAD is its GET: a GET that is 501 is a 501 HEAD, after the token too.
        const groups = `${url}/audioRoutingGroups`;
        assert.equal((await head(groups)).status, 401);
        assert.equal((await head(groups, tokens[cloud])).status, 501);
      });

      test(`${root}: HEAD of a served GET answers its status and headers, no body`, async () => {
        const h = await head(`${s.base}${root}/communications/calls/${calls[cloud]}`, tokens[cloud]);
        assert.equal(h.status, 200);
        assert.match(String(h.headers['content-type']), /^application\/json;odata\.metadata=minimal/);
        assert.equal(h.body, '');
        assert.equal((await head(`${s.base}${root}/communications/calls/${calls[cloud]}`)).status, 401);
      });

      test(`${root}: Location and @odata.context echo the root the client used`, async () => {
        const res = await s.graph(`${root}/communications/calls`, {
          method: 'POST',
          token: tokens[cloud] as string,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(callBody()),
        });
        assert.equal(res.status, 201);
        const call = (await res.json()) as { id: string; '@odata.context': string };
        assert.equal(res.headers.get('location'), `${s.base}${root}/communications/calls/${call.id}`);
        assert.equal(call['@odata.context'], `${s.base}${root}/$metadata#communications/calls/$entity`);
      });
    }
  }

  test('a call id of one cloud is not found under another cloud’s root, with that cloud’s token', async () => {
    const res = await s.graph(`/dod/v1.0/communications/calls/${calls.usgov}/keepAlive`, { method: 'POST', token: tokens.dod as string });
    assert.equal(res.status, 404);
  });

  test('prefixes and versions callkeeper does not serve answer as before: not found, China has no calls', async () => {
    const cases: [string, number, string][] = [
      ['/china/v1.0/communications/calls/x/keepAlive', 400, "Resource not found for the segment 'calls'."],
      ['/china/beta/communications/calls', 400, "Resource not found for the segment 'calls'."],
      [
        '/gcc/v1.0/communications/calls/x/keepAlive',
        404,
        "The URL '/gcc/v1.0/communications/calls/x/keepAlive' does not exist on this server.",
      ],
      [
        '/usgov/v2.0/communications/calls/x/keepAlive',
        404,
        "The URL '/usgov/v2.0/communications/calls/x/keepAlive' does not exist on this server.",
      ],
      ['/V1.0/communications/calls/x/keepAlive', 404, "The URL '/V1.0/communications/calls/x/keepAlive' does not exist on this server."],
      [
        '/usgov/usgov/v1.0/communications/calls/x/keepAlive',
        404,
        "The URL '/usgov/usgov/v1.0/communications/calls/x/keepAlive' does not exist on this server.",
      ],
      ['/dod/communications/calls', 404, "The URL '/dod/communications/calls' does not exist on this server."],
    ];
    for (const [path, status, message] of cases) {
      for (const method of ['GET', 'POST', 'PUT']) {
        const res = await s.graph(path, { method, token: tokens.usgov as string });
        assert.equal(res.status, status, `${method} ${path}`);
        assert.equal(res.headers.get('allow'), null, `${method} ${path}`);
        assert.equal(((await res.json()) as GraphErrorBody).error.message, message, `${method} ${path}`);
      }
    }
  });

  test('/metrics names each route with the root the client used, answered or refused', async () => {
    const id = calls.usgov as string;
    assert.equal(
      (await s.graph(`/usgov/beta/communications/calls/${id}/keepAlive`, { method: 'POST', token: tokens.usgov as string })).status,
      200,
    );
    assert.equal((await fetch(`${s.base}/usgov/beta/communications/calls/${id}/keepAlive`, { method: 'GET' })).status, 405);
    const text = await (await fetch(`${s.base}/metrics`)).text();
    for (const sample of [
      'callkeeper_http_requests_total{route="/usgov/beta/communications/calls/:id/keepAlive",method="POST",status="200"} 1',
      'callkeeper_http_requests_total{route="/usgov/beta/communications/calls/:id/keepAlive",method="GET",status="405"} 1',
      'callkeeper_http_requests_total{route="/usgov/v1.0/communications/calls",method="POST",status="201"}',
      'callkeeper_http_requests_total{route="/v1.0/communications/calls",method="POST",status="201"}',
    ]) {
      assert.ok(
        text.includes(sample),
        `${sample} in\n${text
          .split('\n')
          .filter((l) => l.startsWith('callkeeper_http_requests_total'))
          .join('\n')}`,
      );
    }
    assert.doesNotMatch(text, /route="[^"]*:(cloud|version)/, 'no Graph root pattern in a label');
  });
});
