import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { ManualClock } from '../src/clock/clock.js';
import { createCallkeeper } from '../src/server.js';
import { callBody } from './helpers.js';

test('in-process (Fastify inject, no socket): token, create, keepAlive, 45 minutes, 404', async () => {
  const clock = new ManualClock();
  const ck = await createCallkeeper({ dataDir: undefined, clock, logger: false });
  try {
    const tokenRes = await ck.app.inject({
      method: 'POST',
      url: `/${DEFAULT_APP.tenantId}/oauth2/v2.0/token`,
      payload: `client_id=${DEFAULT_APP.clientId}&client_secret=${DEFAULT_APP.clientSecret}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&grant_type=client_credentials`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(tokenRes.statusCode, 200);
    const authorization = `Bearer ${tokenRes.json<{ access_token: string }>().access_token}`;
    const created = await ck.app.inject({
      method: 'POST',
      url: '/beta/communications/calls',
      payload: callBody(),
      headers: { authorization },
    });
    assert.equal(created.statusCode, 201);
    const { id } = created.json<{ id: string }>();
    const ka = await ck.app.inject({
      method: 'POST',
      url: `/beta/communications/calls/${id}/microsoft.graph.keepAlive`,
      headers: { authorization },
    });
    assert.equal(ka.statusCode, 200);
    assert.equal(ka.body, '');
    clock.advance(45 * 60_000);
    await ck.scheduler.runNow();
    const gone = await ck.app.inject({ method: 'POST', url: `/beta/communications/calls/${id}/keepAlive`, headers: { authorization } });
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.json<{ error: { code: string } }>().error.code, '8522');
  } finally {
    await ck.close();
  }
});
