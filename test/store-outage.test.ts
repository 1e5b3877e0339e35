import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SqliteStore } from '../src/store/sqlite-store.js';
import { callBody, type GraphErrorBody, startServer } from './helpers.js';

test('a store that fails answers 503 with Retry-After and a Graph error, never 500', async () => {
  const store = new SqliteStore();
  const s = await startServer({ store });
  try {
    const token = await s.token();
    const id = await s.createCall(callBody(), token);
    s.ck.scheduler.stop();
    await s.ck.notifier.stop();
    // The store goes away under a running server (a broken disk, a closed connection).
    await store.close();
    const requests = [
      s.graph(`/v1.0/communications/calls/${id}`, { token }),
      s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST', token }),
      s.graph('/v1.0/communications/calls', {
        method: 'POST',
        token,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(callBody()),
      }),
      s.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE', token }),
      fetch(`${s.base}/_callkeeper/calls`),
    ];
    for (const res of await Promise.all(requests)) {
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      const body = (await res.json()) as GraphErrorBody;
      assert.equal(body.error.code, 'ServiceUnavailable');
    }
  } finally {
    await s.close();
  }
});
