import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_VIRTUAL_TIME, ManualClock } from '../src/clock/clock.js';
import { fuzz } from './fuzzer.js';
import { startServer } from './helpers.js';

const SEED = Number(process.env.FUZZ_SEED ?? 16);

test(`fuzz (seed ${SEED}): control API, Graph bodies, ids, token endpoint, clouds and raw HTTP give no 5xx and no crash`, async () => {
  // Near the last supported date, where advancing is most likely to break something.
  const clock = new ManualClock(MAX_VIRTUAL_TIME - 30 * 365 * 86_400_000);
  const s = await startServer({ clock });
  try {
    const token = await s.token();
    const r = await fuzz(s.base, { seed: SEED, requests: 1_500, token });
    assert.equal(r.requests, 1_500);
    assert.deepEqual(r.serverErrors, [], JSON.stringify(r.serverErrors.slice(0, 5), null, 2));
    // Still serving, and the clock within its bounds.
    const health = await fetch(`${s.base}/_callkeeper/health`);
    assert.equal(health.status, 200);
    assert.ok(s.clock.now() <= MAX_VIRTUAL_TIME);
    // The fuzzer reached the server's answers, not just its refusals.
    for (const status of ['200', '201', '400', '401', '404', '415'])
      assert.ok((r.byStatus[status] ?? 0) > 0, `${status}: ${JSON.stringify(r.byStatus)}`);
  } finally {
    await s.close();
  }
});
