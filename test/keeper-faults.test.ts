/**
 * The KeepAlive runtime against callkeeper's own fault rules (no proxy): a 10-virtual-minute
 * window of 503s, then a 429 storm, both injected with POST /_callkeeper/faults. Zero calls lost.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KeepAlive } from '../src/keeper/keep-alive.js';
import { HOUR, MINUTE, type Rig, startRig } from './keeper-harness.test.js';

const CALLS = 100;

let rig: Rig;
before(async () => {
  rig = await startRig();
});
after(() => rig.close());

async function addFault(rule: unknown): Promise<{ id: string }> {
  const res = await fetch(`${rig.base}/_callkeeper/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(rule),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()) as { id: string };
}

interface Entry {
  status: number | null;
  fault: string | null;
  callId: string | null;
  at: string;
}

test('10 virtual minutes of 503s, then a 429 storm: the keeper rides both out and no call is lost', async () => {
  const ids = await rig.createCalls(CALLS);
  const keeper = new KeepAlive({ baseUrl: rig.graph, credential: rig.credential(), clock: rig.clock, random: () => 0.5 });
  const failures: number[] = [];
  keeper.on('attemptFailed', (e: { status?: number }) => failures.push(e.status ?? 0));
  const missed: string[] = [];
  keeper.on('deadlineMissed', (e: { callId: string }) => missed.push(e.callId));
  try {
    for (const id of ids) keeper.track(id);
    await rig.run(keeper, 20 * MINUTE);

    const outageFrom = rig.clock.now();
    const unavailable = await addFault({
      match: { method: 'POST', path: '/communications/calls/*/keepAlive' },
      effect: { status: 503, retryAfter: 30 },
      until: new Date(outageFrom + 10 * MINUTE).toISOString(),
    });
    await rig.run(keeper, 40 * MINUTE);

    // A storm: for 5 minutes every keepAlive is throttled with Retry-After: 60.
    const stormFrom = rig.clock.now();
    const storm = await addFault({
      match: { path: '/communications/calls/*/keepAlive' },
      effect: { status: 429, retryAfter: 60 },
      until: new Date(stormFrom + 5 * MINUTE).toISOString(),
    });
    await rig.run(keeper, HOUR);

    const rules = (await (await fetch(`${rig.base}/_callkeeper/faults`)).json()) as { value: { id: string }[] };
    assert.deepEqual(rules.value, [], 'the 503 window ended and the storm is spent');
    const journal = ((await (await fetch(`${rig.base}/_callkeeper/requests`)).json()) as { value: Entry[] }).value;
    assert.ok(
      journal.some((e) => e.fault === storm.id && e.status === 429),
      'the storm answered 429s',
    );
    // Calls due in the storm were kept alive after it.
    assert.ok(journal.some((e) => e.status === 200 && Date.parse(e.at) >= stormFrom + 5 * MINUTE));
    assert.ok(failures.filter((s) => s === 503).length > 0, 'the keeper met the 503s');
    assert.ok(failures.filter((s) => s === 429).length > 0, 'the keeper met the 429s');
    assert.ok(unavailable.id);

    const states = await Promise.all(ids.map(async (id) => (await rig.ck.store.get(id))?.state));
    assert.deepEqual(
      states.filter((s) => s !== 'established'),
      [],
      'every call is still established',
    );
    assert.deepEqual(missed, []);
    // Every call got a keepAlive through after the storm.
    for (const id of ids) {
      const call = await rig.ck.store.get(id);
      assert.ok((call?.lastKeepAliveAt ?? 0) > outageFrom + 10 * MINUTE, `call ${id} was kept alive after the 503s`);
    }
  } finally {
    await keeper.close();
  }
});
