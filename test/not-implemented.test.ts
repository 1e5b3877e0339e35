import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { NOT_IMPLEMENTED } from '../src/http/not-implemented-routes.js';
import { type GraphErrorBody, startServer, type TestServer } from './helpers.js';
import { FIXTURES } from './paths.js';

const OPENAPI = `${FIXTURES}graph/CloudCommunications.v1.0.yml`;
const METHODS = ['get', 'post', 'patch', 'put', 'delete'] as const;

interface Documented {
  method: string;
  /** OpenAPI template, e.g. /communications/calls/{call-id}/microsoft.graph.keepAlive */
  path: string;
}

/** Every method of every /communications/calls... path of Graph's OpenAPI description. */
function documented(): Documented[] {
  const doc = parse(readFileSync(OPENAPI, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
  const out: Documented[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    if (path !== '/communications/calls' && !path.startsWith('/communications/calls/')) continue;
    for (const m of METHODS) if (item[m]) out.push({ method: m.toUpperCase(), path });
  }
  return out;
}

/** The same route as listed in NOT_IMPLEMENTED (relative, params as ':'). */
const shape = (openapiPath: string) =>
  openapiPath
    .slice('/communications/calls'.length)
    .replace(/^\//, '')
    .replace(/\{[^}]+\}/g, ':')
    .replace(/(^|\/)microsoft\.graph\./, '$1');
const listed = new Set(NOT_IMPLEMENTED.map((r) => `${r.method} ${r.path.replace(/:\w+/g, ':')}`));

describe('documented call routes: each is implemented or answers 501 NotImplemented', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  const routes = documented();
  test('the OpenAPI description has the calls routes (sanity)', () => {
    assert.ok(routes.length >= 30, `${routes.length} routes`);
    assert.ok(routes.some((r) => r.path.endsWith('/microsoft.graph.keepAlive')));
  });

  test('every listed route is in the OpenAPI description (the list holds no typo)', () => {
    const documentedShapes = new Set(routes.map((r) => `${r.method} ${shape(r.path)}`));
    for (const key of listed) assert.ok(documentedShapes.has(key), key);
  });

  for (const { method, path } of routes) {
    const forms = path.includes('/microsoft.graph.') ? [path, path.replace('/microsoft.graph.', '/')] : [path];
    for (const form of forms) {
      const isListed = listed.has(`${method} ${shape(path)}`);
      test(`${method} ${form} -> ${isListed ? '501 NotImplemented' : 'served'}`, async () => {
        // A live call of the app, so that served routes give their real answer.
        const id = await s.createCall();
        const url = form.replace('{call-id}', id).replace(/\{[^}]+\}/g, 'x');
        const withBody = method === 'POST' || method === 'PATCH';
        const res = await s.graph(`/v1.0${url}`, {
          method,
          ...(withBody ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}),
        });
        const text = await res.text();
        const body = (text ? JSON.parse(text) : {}) as Partial<GraphErrorBody>;
        assert.doesNotMatch(body.error?.message ?? '', /Resource not found for the segment/, `${res.status} ${text}`);
        assert.notEqual(res.status, 405, text);
        if (isListed) {
          assert.equal(res.status, 501, text);
          assert.equal(body.error?.code, 'NotImplemented');
          assert.match(body.error?.message ?? '', /^The requested feature isn't implemented: callkeeper does not emulate .+ yet\.$/);
          const action = /(?:microsoft\.graph\.)?(\w+)$/.exec(form)?.[1];
          const isAction = NOT_IMPLEMENTED.some((r) => r.action && r.path.split('/').pop() === action);
          // An action is named as such; anything else by method and path.
          const named = isAction ? `the action '${action}'` : `'${method} /communications/calls`;
          assert.ok(body.error?.message.includes(named), `${named} in ${text}`);
        } else {
          assert.notEqual(res.status, 501, `${shape(path)} is served: its entry must leave NOT_IMPLEMENTED (${text})`);
        }
      });
    }
  }

  test('a path below a listed navigation reports the segment after it, not the navigation', async () => {
    const id = await s.createCall();
    const res = await s.graph(`/v1.0/communications/calls/${id}/audioRoutingGroups/g1/members`);
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as GraphErrorBody).error.message, /segment 'members'/);
  });

  test('a 501 comes after the token check: no token is 401', async () => {
    const id = await s.createCall();
    const res = await fetch(`${s.base}/v1.0/communications/calls/${id}/addLargeGalleryView`, { method: 'POST' });
    assert.equal(res.status, 401);
  });

  test('the 501 names the action, in beta and in a national cloud too', async () => {
    const id = await s.createCall();
    const beta = await s.graph(`/beta/communications/calls/${id}/microsoft.graph.addLargeGalleryView`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(beta.status, 501);
    assert.equal(
      ((await beta.json()) as GraphErrorBody).error.message,
      "The requested feature isn't implemented: callkeeper does not emulate the action 'addLargeGalleryView' yet.",
    );
  });
});
