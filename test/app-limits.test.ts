import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_DISPLAY_NAME, MAX_SECRET } from '../src/auth/app-config.js';
import { type GraphErrorBody, startServer, type TestServer } from './helpers.js';

// Issue 16 item 3: app registration was unbounded (84 posts of 1 MB took RSS past 1.2 GB).
describe('app registrations are bounded', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  const register = (body: unknown) =>
    fetch(`${s.base}/_callkeeper/apps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const appCount = async () => ((await (await fetch(`${s.base}/_callkeeper/apps`)).json()) as { value: unknown[] }).value.length;

  test('a display name or secret past its limit is a 400 naming the field, and nothing is stored', async () => {
    const before = await appCount();
    for (const [field, body] of [
      ['displayName', { displayName: 'x'.repeat(MAX_DISPLAY_NAME + 1), roles: [] }],
      ['displayName', { displayName: '', roles: [] }],
      ['clientSecret', { clientSecret: 's'.repeat(MAX_SECRET + 1), roles: [] }],
      ['clientSecret', { clientSecret: 'short', roles: [] }],
      ['clientSecret', { clientSecret: 's'.repeat(900_000), roles: [] }],
    ] as const) {
      const res = await register(body);
      assert.equal(res.status, 400, `${field} of ${JSON.stringify(body).length} bytes`);
      const err = (await res.json()) as GraphErrorBody;
      assert.match(err.error.message, new RegExp(`'${field}'`));
    }
    assert.equal(await appCount(), before, 'no refused registration was stored');
  });

  test('limits at their edge are accepted; roles are de-duplicated', async () => {
    const res = await register({
      displayName: 'd'.repeat(MAX_DISPLAY_NAME),
      clientSecret: 's'.repeat(MAX_SECRET),
      roles: ['Calls.Initiate.All', 'Calls.Initiate.All'],
    });
    assert.equal(res.status, 201);
    const app = (await res.json()) as { roles: string[]; displayName: string };
    assert.deepEqual(app.roles, ['Calls.Initiate.All']);
    assert.equal(app.displayName.length, MAX_DISPLAY_NAME);
  });
});
