import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FaultRule, FaultStore } from '../src/store/fault-store.js';
import type { JournalEntry, JournalStore } from '../src/store/journal-store.js';
import type { ThrottleStore } from '../src/store/throttle-store.js';

export type ControlStore = FaultStore & ThrottleStore & JournalStore & { close(): Promise<void> };

const T0 = Date.UTC(2026, 0, 1);

function rule(overrides: Partial<FaultRule> = {}): FaultRule {
  return {
    id: randomUUID(),
    target: 'graph',
    match: { path: '/communications/calls/*/keepAlive' },
    effect: { status: 503, retryAfter: 5 },
    rate: 1,
    count: null,
    remaining: null,
    until: null,
    createdAt: T0,
    ...overrides,
  };
}

function entry(overrides: Partial<JournalEntry> = {}): JournalEntry {
  return {
    at: T0,
    method: 'POST',
    path: '/v1.0/communications/calls/x/keepAlive',
    status: 200,
    latencyMs: 1.5,
    appId: 'app-a',
    callId: 'call-1',
    requestId: randomUUID(),
    clientRequestId: randomUUID(),
    fault: null,
    ...overrides,
  };
}

/**
 * The behaviour every store of fault rules, throttle counters and the journal must have.
 * `open` gives a fresh empty store; `second`, when the store can be shared, a second handle
 * on the same data (another instance), for the tests that interleave two handles.
 */
export function controlStoreContract(name: string, open: () => Promise<{ a: ControlStore; b: ControlStore }>): void {
  describe(`control store contract: ${name}`, () => {
    let a: ControlStore;
    let b: ControlStore;
    before(async () => {
      ({ a, b } = await open());
    });
    after(async () => {
      await a.close();
      await b.close();
    });

    test('faults: add, list oldest first (as stored), remove with a tagged result, clear', async () => {
      await a.clearFaults();
      const r1 = rule();
      const r2 = rule({ target: 'notifications', match: { callId: 'c' }, effect: { latencyMs: 10 }, rate: 0.5 });
      await a.addFault(r1);
      await b.addFault(r2);
      assert.deepEqual(await b.listFaults(T0), [r1, r2]);
      assert.deepEqual(await a.removeFault(r1.id), { ok: true });
      assert.deepEqual(await b.removeFault(r1.id), { ok: false, reason: 'notFound' });
      assert.deepEqual(await a.listFaults(T0), [r2]);
      assert.equal(await b.clearFaults(), 1);
      assert.deepEqual(await a.listFaults(T0), []);
    });

    test('faults: adding an id again replaces the rule (config rules re-armed on restart)', async () => {
      await a.clearFaults();
      const r = rule({ id: 'config-1', count: 2, remaining: 2 });
      await a.addFault(r);
      await a.consumeFault('config-1', T0);
      await b.addFault(r);
      assert.deepEqual(
        (await a.listFaults(T0)).map((x) => [x.id, x.remaining]),
        [['config-1', 2]],
      );
    });

    test('faults: consume counts down across handles; exactly `count` takers of many interleaved win', async () => {
      await a.clearFaults();
      const r = rule({ count: 5, remaining: 5 });
      await a.addFault(r);
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).consumeFault(r.id, T0)));
      assert.equal(results.filter((x) => x.ok).length, 5);
      assert.deepEqual(
        results
          .filter((x) => x.ok)
          .map((x) => (x.ok ? x.remaining : -1))
          .sort(),
        [0, 1, 2, 3, 4],
      );
      assert.ok(results.filter((x) => !x.ok).every((x) => !x.ok && x.reason === 'exhausted'));
      assert.deepEqual(await a.listFaults(T0), [], 'a spent rule is not listed');
      assert.deepEqual(await a.consumeFault('nope', T0), { ok: false, reason: 'notFound' });
    });

    test('faults: an unlimited rule never runs out; until ends a rule at that time', async () => {
      await a.clearFaults();
      const forever = rule();
      const brief = rule({ until: T0 + 1000 });
      await a.addFault(forever);
      await a.addFault(brief);
      for (let i = 0; i < 3; i++) assert.deepEqual(await b.consumeFault(forever.id, T0), { ok: true, remaining: null });
      assert.deepEqual(await b.consumeFault(brief.id, T0 + 999), { ok: true, remaining: null });
      assert.deepEqual(await b.consumeFault(brief.id, T0 + 1000), { ok: false, reason: 'expired' });
      assert.deepEqual(
        (await a.listFaults(T0 + 1000)).map((x) => x.id),
        [forever.id],
      );
      assert.equal((await a.listFaults(T0 + 999)).length, 2);
    });

    test('throttle: at most `limit` per window across handles; limited ones learn the time left; a new window starts over', async () => {
      await a.clearThrottle();
      const now = T0 + 4_000; // 4 s into a 15 s window
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).hitThrottle('t/app', now, 15_000, 6)));
      assert.equal(results.filter((r) => r.ok).length, 6);
      for (const r of results) if (!r.ok) assert.deepEqual(r, { ok: false, reason: 'limited', retryAfterMs: 11_000 });
      assert.deepEqual(await a.hitThrottle('t/other', now, 15_000, 6), { ok: true, count: 1 }, 'keys are apart');
      assert.deepEqual(await b.hitThrottle('t/app', T0 + 15_000, 15_000, 6), { ok: true, count: 1 });
      await a.clearThrottle();
      assert.deepEqual(await b.hitThrottle('t/app', T0 + 15_000, 15_000, 6), { ok: true, count: 1 });
    });

    test('journal: newest first, filtered by call, app or both, limited; keeps at least the newest `keep`', async () => {
      await a.clearRequests();
      const e1 = entry({ callId: 'c1', appId: 'x' });
      const e2 = entry({ callId: 'c2', appId: 'x', status: null, fault: 'f' });
      const e3 = entry({ callId: null, appId: 'y' });
      await a.appendRequest(e1, 100);
      await b.appendRequest(e2, 100);
      await a.appendRequest(e3, 100);
      assert.deepEqual(await b.listRequests({ limit: 10 }), [e3, e2, e1]);
      assert.deepEqual(await b.listRequests({ limit: 2 }), [e3, e2]);
      assert.deepEqual(await a.listRequests({ callId: 'c2', limit: 10 }), [e2]);
      assert.deepEqual(await a.listRequests({ appId: 'x', limit: 10 }), [e2, e1]);
      assert.deepEqual(await a.listRequests({ appId: 'y', callId: 'c1', limit: 10 }), []);
      for (let i = 0; i < 250; i++) await (i % 2 ? a : b).appendRequest(entry({ path: `/p${i}` }), 20);
      const kept = await a.listRequests({ limit: 1000 });
      assert.ok(kept.length >= 20 && kept.length < 253, `kept ${kept.length}`);
      assert.deepEqual(
        kept.slice(0, 20).map((e) => e.path),
        Array.from({ length: 20 }, (_, i) => `/p${249 - i}`),
      );
      await b.clearRequests();
      assert.deepEqual(await a.listRequests({ limit: 10 }), []);
    });

    test('journal: appends made at once (one burst of answers) keep their order and the bound', async () => {
      await a.clearRequests();
      // Not awaited one by one: a store may write them together (one script call per turn on Redis).
      await Promise.all(Array.from({ length: 1_500 }, (_, i) => a.appendRequest(entry({ path: `/q${i}` }), 1_200)));
      const kept = await b.listRequests({ limit: 2_000 });
      assert.ok(kept.length >= 1_200 && kept.length <= 1_500, `kept ${kept.length}`);
      assert.deepEqual(
        kept.slice(0, 1_200).map((e) => e.path),
        Array.from({ length: 1_200 }, (_, i) => `/q${1_499 - i}`),
      );
      await a.clearRequests();
    });
  });
}
