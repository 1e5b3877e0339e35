import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { KEEPALIVE_TIMEOUT_RESULT, type ResultInfo, UNANSWERED_RESULT } from '../src/calls/call-types.js';
import { type CallStore, DuplicateCallError, type NewCall } from '../src/store/call-store.js';

const A = { appId: 'app-a', tenantId: 'tenant-1' };
const B = { appId: 'app-b', tenantId: 'tenant-1' };
const T0 = Date.UTC(2026, 0, 1);
const HANGUP: ResultInfo = { code: 200, subcode: 7000, message: 'bye' };
const RESULTS = { keepAlive: KEEPALIVE_TIMEOUT_RESULT, unanswered: UNANSWERED_RESULT };

function newCall(overrides: Partial<NewCall> = {}): NewCall {
  return {
    id: randomUUID(),
    owner: A,
    state: 'establishing',
    direction: 'outgoing',
    createdAt: T0,
    deadline: T0 + 45_000,
    establishAt: T0 + 1_000,
    resource: { callbackUri: 'https://bot/cb', nested: { list: [1, 'two'] } },
    ...overrides,
  };
}

/**
 * The behaviour every CallStore must have. Each store's test file calls this with a factory
 * that gives a fresh, empty store.
 */
export function storeContract(name: string, open: () => Promise<CallStore>): void {
  describe(`CallStore contract: ${name}`, () => {
    let store: CallStore;
    before(async () => {
      store = await open();
    });
    after(() => store.close());

    test('create then findLive returns the call as stored, for its owner only', async () => {
      const c = newCall();
      await store.create(c);
      const found = await store.findLive(c.id, A, T0);
      assert.equal(found?.id, c.id);
      assert.deepEqual(found?.owner, A);
      assert.equal(found?.state, 'establishing');
      assert.equal(found?.deadline, c.deadline);
      assert.equal(found?.lastKeepAliveAt, null);
      assert.deepEqual(found?.resource, c.resource);
      assert.equal(await store.findLive(c.id, B, T0), undefined);
      assert.equal(await store.findLive(c.id, { appId: 'app-a', tenantId: 'tenant-2' }, T0), undefined);
      assert.equal(await store.findLive('nope', A, T0), undefined);
    });

    test('a duplicate id is refused', async () => {
      const c = newCall();
      await store.create(c);
      await assert.rejects(store.create(c), DuplicateCallError);
    });

    test('a call is live strictly before its deadline', async () => {
      const c = newCall();
      await store.create(c);
      assert.ok(await store.findLive(c.id, A, c.deadline - 1));
      assert.equal(await store.findLive(c.id, A, c.deadline), undefined);
    });

    test('keepAlive moves the deadline, only for the owner and only while live', async () => {
      const c = newCall();
      await store.create(c);
      assert.equal(await store.keepAlive(c.id, B, T0 + 10, T0 + 99_000), false);
      assert.equal(await store.keepAlive(c.id, A, T0 + 44_999, T0 + 89_999), true);
      const after1 = await store.get(c.id);
      assert.equal(after1?.lastKeepAliveAt, T0 + 44_999);
      assert.equal(after1?.deadline, T0 + 89_999);
      assert.equal(await store.keepAlive(c.id, A, T0 + 89_999, T0 + 200_000), false, 'at the deadline it is too late');
      assert.equal((await store.get(c.id))?.deadline, T0 + 89_999);
    });

    test('a call kept alive past its first deadline ends only at its new one', async () => {
      const fresh = await open();
      try {
        const c = newCall({ deadline: T0 + 100, establishAt: null });
        await fresh.create(c);
        assert.equal(await fresh.keepAlive(c.id, A, T0 + 50, T0 + 150), true);
        assert.deepEqual(await fresh.expireDue(T0 + 100, 10, RESULTS), []);
        const next = (await fresh.nextDue()).deadline;
        assert.ok(next !== undefined && next <= T0 + 150, 'the scheduler is told to wake by the new deadline');
        assert.deepEqual(await fresh.expireDue(T0 + 149, 10, RESULTS), []);
        const ended = await fresh.expireDue(T0 + 150, 10, RESULTS);
        assert.deepEqual(
          ended.map((x) => [x.id, x.endedAt]),
          [[c.id, T0 + 150]],
        );
        assert.deepEqual(await fresh.counts(), { active: 0, ended: 1 });
      } finally {
        await fresh.close();
      }
    });

    test('end is owner-checked, exclusive, and leaves a terminated call with its result', async () => {
      const c = newCall();
      await store.create(c);
      assert.equal(await store.end(c.id, B, T0 + 5, HANGUP), undefined);
      const results = await Promise.all([store.end(c.id, A, T0 + 5, HANGUP), store.end(c.id, null, T0 + 5, KEEPALIVE_TIMEOUT_RESULT)]);
      assert.equal(results.filter(Boolean).length, 1, 'exactly one end wins');
      const ended = await store.get(c.id);
      assert.equal(ended?.state, 'terminated');
      assert.equal(ended?.endedAt, T0 + 5);
      assert.equal(ended?.deadline, null);
      assert.equal(await store.findLive(c.id, A, T0 + 5), undefined);
      assert.equal(await store.keepAlive(c.id, A, T0 + 6, T0 + 100), false);
    });

    test('expireDue ends due calls at their own deadlines, oldest first, each exactly once', async () => {
      const store = await open();
      const base = T0 + 1_000_000;
      const calls = [3, 1, 2, 9].map((k) => newCall({ createdAt: base, deadline: base + k * 1000, establishAt: null }));
      for (const c of calls) await store.create(c);
      const [first, second] = await Promise.all([store.expireDue(base + 3000, 2, RESULTS), store.expireDue(base + 3000, 2, RESULTS)]);
      const claimed = [...first, ...second];
      const mine = claimed;
      assert.equal(mine.length, 3, 'the three due calls, each claimed once');
      assert.equal(new Set(mine.map((c) => c.id)).size, 3);
      for (const c of mine) {
        assert.equal(c.state, 'terminated');
        assert.deepEqual(c.resultInfo, KEEPALIVE_TIMEOUT_RESULT);
        assert.equal(c.endedAt, calls.find((x) => x.id === c.id)?.deadline);
      }
      const notDue = calls.find((c) => c.deadline === base + 9000);
      assert.equal((await store.get(notDue?.id ?? ''))?.state, 'establishing');
      assert.equal((await store.expireDue(base + 3000, 10, RESULTS)).filter((c) => calls.some((x) => x.id === c.id)).length, 0);
    });

    test('establishDue moves due establishing calls to established, once', async () => {
      const base = T0 + 2_000_000;
      const c = newCall({ createdAt: base, deadline: base + 45_000, establishAt: base + 500 });
      await store.create(c);
      assert.equal(
        (await store.establishDue(base + 499, 100)).some((x) => x.id === c.id),
        false,
      );
      const moved = await store.establishDue(base + 500, 100);
      assert.equal(moved.find((x) => x.id === c.id)?.state, 'established');
      assert.equal(
        (await store.establishDue(base + 600, 100)).some((x) => x.id === c.id),
        false,
      );
      assert.equal((await store.get(c.id))?.establishAt, null);
    });

    test('nextDue names the earliest pending moments', async () => {
      const fresh = await open();
      try {
        assert.deepEqual(await fresh.nextDue(), {});
        await fresh.create(newCall({ deadline: T0 + 50, establishAt: T0 + 20 }));
        await fresh.create(newCall({ deadline: T0 + 40, establishAt: null }));
        assert.deepEqual(await fresh.nextDue(), { deadline: T0 + 40, establishAt: T0 + 20 });
        await fresh.expireDue(T0 + 40, 10, RESULTS);
        assert.deepEqual(await fresh.nextDue(), { deadline: T0 + 50, establishAt: T0 + 20, oldestEndedAt: T0 + 40 });
      } finally {
        await fresh.close();
      }
    });

    test('purgeEnded deletes only ended calls old enough', async () => {
      const fresh = await open();
      try {
        const live = newCall();
        const old = newCall();
        await fresh.create(live);
        await fresh.create(old);
        await fresh.end(old.id, A, T0 + 10, HANGUP);
        assert.equal(await fresh.purgeEnded(T0 + 9, 100), 0);
        assert.equal(await fresh.purgeEnded(T0 + 10, 100), 1);
        assert.equal(await fresh.get(old.id), undefined);
        assert.ok(await fresh.get(live.id));
        assert.deepEqual(await fresh.counts(), { active: 1, ended: 0 });
      } finally {
        await fresh.close();
      }
    });

    test('list pages through calls in creation order, filtered by state and app', async () => {
      const fresh = await open();
      try {
        const ids: string[] = [];
        for (let i = 0; i < 7; i++) {
          const c = newCall({ owner: i % 2 ? B : A });
          ids.push(c.id);
          await fresh.create(c);
        }
        await fresh.end(ids[0] ?? '', A, T0 + 1, HANGUP);
        const seen: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await fresh.list({ limit: 3, ...(after ? { after } : {}) });
          seen.push(...page.calls.map((c) => c.id));
          if (!page.next) break;
          after = page.next;
        }
        assert.deepEqual(seen, ids);
        assert.equal((await fresh.list({ limit: 100, state: 'ended' })).calls.length, 1);
        assert.equal((await fresh.list({ limit: 100, state: 'active' })).calls.length, 6);
        assert.equal((await fresh.list({ limit: 100, appId: 'app-b' })).calls.length, 3);
        assert.deepEqual(await fresh.counts(), { active: 6, ended: 1 });
      } finally {
        await fresh.close();
      }
    });

    test('every transition queues its notifications in the same step, in order', async () => {
      const fresh = await open();
      try {
        const c = newCall({ deadline: T0 + 45_000, establishAt: T0 + 1_000 });
        await fresh.create(c);
        await fresh.establishDue(T0 + 1_000, 10);
        await fresh.end(c.id, A, T0 + 2_000, HANGUP);
        const queued = (await fresh.listDeliveries({ callId: c.id, limit: 10 })).reverse();
        assert.deepEqual(
          queued.map((e) => `${e.notification.changeType}/${String(e.notification.resourceData.state)}`),
          ['updated/establishing', 'updated/established', 'updated/terminating', 'deleted/terminated'],
        );
        assert.ok(queued.every((e) => e.status === 'pending' && e.callbackUri === 'https://bot/cb' && e.attempts === 0));
        assert.deepEqual(queued[3]?.notification.resourceData.resultInfo, { '@odata.type': '#microsoft.graph.resultInfo', ...HANGUP });
      } finally {
        await fresh.close();
      }
    });

    test('claimDeliveries hands out one notification per call at a time, in order, each to one claimer', async () => {
      const fresh = await open();
      try {
        const c1 = newCall({ establishAt: null });
        const c2 = newCall({ establishAt: null });
        await fresh.create(c1);
        await fresh.create(c2);
        await fresh.end(c1.id, A, T0 + 5, HANGUP);
        const [x, y] = await Promise.all([fresh.claimDeliveries(T0 + 5, 10, T0 + 1_000), fresh.claimDeliveries(T0 + 5, 10, T0 + 1_000)]);
        const claimed = [...x, ...y];
        assert.equal(claimed.length, 2, 'the head of each call, once');
        assert.deepEqual(new Set(claimed.map((e) => e.callId)), new Set([c1.id, c2.id]));
        assert.ok(claimed.every((e) => e.notification.resourceData.state === 'establishing'));
        assert.deepEqual(await fresh.claimDeliveries(T0 + 5, 10, T0 + 1_000), [], 'leased heads block their calls');
        const head1 = claimed.find((e) => e.callId === c1.id);
        assert.ok(head1);
        await fresh.finishDelivery(
          head1.seq,
          { attempt: 1, at: T0 + 6, statusCode: 202, latencyMs: 1, error: null, outcome: 'delivered' },
          { status: 'delivered' },
        );
        const next = await fresh.claimDeliveries(T0 + 6, 10, T0 + 1_000);
        assert.deepEqual(
          next.map((e) => e.notification.resourceData.state),
          ['terminating'],
        );
        // A claimer that died: its lease runs out and the entry comes back.
        const again = await fresh.claimDeliveries(T0 + 1_000, 10, T0 + 2_000);
        assert.ok(again.some((e) => e.callId === c2.id));
      } finally {
        await fresh.close();
      }
    });

    test('finishDelivery records attempts; retries wait their time; dead and delivered leave the queue', async () => {
      const fresh = await open();
      try {
        const c = newCall({ establishAt: null });
        await fresh.create(c);
        const [e] = await fresh.claimDeliveries(T0, 10, T0 + 100);
        assert.ok(e);
        await fresh.finishDelivery(
          e.seq,
          { attempt: 1, at: T0, statusCode: 503, latencyMs: 2.5, error: 'HTTP 503', outcome: 'retry' },
          { status: 'pending', nextAttemptAt: T0 + 500 },
        );
        assert.equal(await fresh.nextDeliveryAt(), T0 + 500);
        assert.deepEqual(await fresh.claimDeliveries(T0 + 499, 10, T0 + 600), []);
        const [retry] = await fresh.claimDeliveries(T0 + 500, 10, T0 + 600);
        assert.equal(retry?.attempts, 1);
        await fresh.finishDelivery(
          e.seq,
          { attempt: 2, at: T0 + 500, statusCode: null, latencyMs: 3, error: 'ECONNREFUSED', outcome: 'dead' },
          { status: 'dead' },
        );
        const [listed] = await fresh.listDeliveries({ callId: c.id, limit: 10 });
        assert.equal(listed?.status, 'dead');
        assert.deepEqual(
          listed?.attemptLog.map((a) => [a.attempt, a.statusCode, a.error, a.outcome]),
          [
            [1, 503, 'HTTP 503', 'retry'],
            [2, null, 'ECONNREFUSED', 'dead'],
          ],
        );
        assert.equal(await fresh.nextDeliveryAt(), undefined);
        assert.equal((await fresh.listDeliveries({ status: 'dead', limit: 10 })).length, 1);
      } finally {
        await fresh.close();
      }
    });

    test('incoming calls: answered only while incoming; reject/redirect end only incoming calls; unanswered expiry', async () => {
      const fresh = await open();
      try {
        const ring = () => newCall({ state: 'incoming', direction: 'incoming', deadline: T0 + 15_000, establishAt: null });
        const answered = ring();
        await fresh.create(answered);
        const a = await fresh.answer(answered.id, A, T0 + 1, {
          deadline: T0 + 1 + 45_000,
          establishAt: T0 + 1_001,
          resource: { callbackUri: 'https://bot/answer' },
        });
        assert.equal(a?.state, 'establishing');
        assert.equal(a?.deadline, T0 + 45_001);
        assert.equal(a?.resource.callbackUri, 'https://bot/answer');
        assert.equal(
          await fresh.answer(answered.id, A, T0 + 2, { deadline: T0 + 9, establishAt: T0 + 9, resource: {} }),
          undefined,
          'not twice',
        );
        assert.equal(await fresh.end(answered.id, A, T0 + 2, HANGUP, 'incoming'), undefined, 'no longer incoming');
        const rejected = ring();
        await fresh.create(rejected);
        assert.equal(
          await fresh.answer(rejected.id, B, T0 + 1, { deadline: T0 + 9, establishAt: T0 + 9, resource: {} }),
          undefined,
          'owner only',
        );
        assert.equal((await fresh.end(rejected.id, A, T0 + 1, HANGUP, 'incoming'))?.state, 'terminated');
        const unanswered = ring();
        await fresh.create(unanswered);
        const expired = await fresh.expireDue(T0 + 15_000, 10, RESULTS);
        assert.deepEqual(
          expired.map((c) => [c.id, c.resultInfo]),
          [[unanswered.id, UNANSWERED_RESULT]],
        );
        const queued = (await fresh.listDeliveries({ callId: unanswered.id, limit: 10 })).reverse();
        assert.deepEqual(
          queued.map((e) => `${e.notification.changeType}/${String(e.notification.resourceData.state)}`),
          ['created/incoming', 'updated/terminating', 'deleted/terminated'],
        );
      } finally {
        await fresh.close();
      }
    });

    test('getOrInitSetting keeps the first value', async () => {
      assert.equal(await store.getSetting('k'), undefined);
      assert.equal(await store.getOrInitSetting('k', 'first'), 'first');
      assert.equal(await store.getSetting('k'), 'first');
      assert.equal(await store.getOrInitSetting('k', 'second'), 'first');
      await store.putSetting('k', 'third');
      assert.equal(await store.getOrInitSetting('k', 'fourth'), 'third');
    });

    // Last: it empties the store the other tests share.
    test('resetCalls deletes every call and notification; settings stay', async () => {
      const c = newCall();
      const depth = await store.outboxDepth();
      await store.create(c);
      assert.ok((await store.outboxDepth()) > depth, 'a new call queues notifications');
      await store.putSetting('kept', 'yes');
      await store.resetCalls();
      assert.equal(await store.get(c.id), undefined);
      assert.deepEqual(await store.counts(), { active: 0, ended: 0 });
      assert.deepEqual(await store.listDeliveries({ limit: 10 }), []);
      assert.equal(await store.nextDeliveryAt(), undefined);
      assert.equal(await store.outboxDepth(), 0);
      assert.equal(await store.getSetting('kept'), 'yes');
      await store.create(newCall({ id: c.id }));
      assert.equal((await store.get(c.id))?.id, c.id, 'the id can be used again');
    });
  });
}
