import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { KEEPALIVE_TIMEOUT_RESULT, type ResultInfo, UNANSWERED_RESULT } from '../src/calls/call-types.js';
import { advanceStep, initialClockState, virtualAt } from '../src/clock/clock-math.js';
import { renderNotifications } from '../src/notifications/render.js';
import type { OutboxBounds, OutboxEntry } from '../src/store/outbox-port.js';
import { DuplicateCallError, type NewCall, type Store } from '../src/store/store.js';

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

const DELIVERED = { attempt: 1, at: T0 + 6, statusCode: 202, latencyMs: 1, error: null, outcome: 'delivered' } as const;

/** What an entry tells the bot, as `changeType/state` lines. */
const lines = (entries: OutboxEntry[]) =>
  entries.flatMap((e) => renderNotifications(e.fact).map((n) => `${n.changeType}/${String(n.resourceData.state)}`));

export interface ContractOptions {
  outboxBounds?: OutboxBounds;
}

/**
 * The behaviour every Store must have. Each store's test file calls this with a factory that
 * gives a fresh, empty store, and (where the store can be shared) one that gives two handles
 * on the same fresh data, as two instances would have: operations interleaved through both
 * must stay atomic.
 */
export function storeContract(
  name: string,
  open: (options?: ContractOptions) => Promise<Store>,
  openPair?: (options?: ContractOptions) => Promise<[Store, Store]>,
): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
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
      assert.deepEqual(await store.keepAlive(c.id, B, T0 + 10, T0 + 99_000), { ok: false, reason: 'notFound' });
      assert.deepEqual(await store.keepAlive(c.id, A, T0 + 44_999, T0 + 89_999), { ok: true, value: undefined });
      const after1 = await store.get(c.id);
      assert.equal(after1?.lastKeepAliveAt, T0 + 44_999);
      assert.equal(after1?.deadline, T0 + 89_999);
      assert.deepEqual(
        await store.keepAlive(c.id, A, T0 + 89_999, T0 + 200_000),
        { ok: false, reason: 'notFound' },
        'at the deadline it is too late',
      );
      assert.equal((await store.get(c.id))?.deadline, T0 + 89_999);
    });

    test('a call kept alive past its first deadline ends only at its new one', async () => {
      const fresh = await open();
      try {
        const c = newCall({ deadline: T0 + 100, establishAt: null });
        await fresh.create(c);
        assert.equal((await fresh.keepAlive(c.id, A, T0 + 50, T0 + 150)).ok, true);
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
      assert.deepEqual(await store.end(c.id, B, T0 + 5, HANGUP), { ok: false, reason: 'notFound' });
      const results = await Promise.all([store.end(c.id, A, T0 + 5, HANGUP), store.end(c.id, null, T0 + 5, KEEPALIVE_TIMEOUT_RESULT)]);
      assert.equal(results.filter((r) => r.ok).length, 1, 'exactly one end wins');
      assert.deepEqual(
        results.find((r) => !r.ok),
        { ok: false, reason: 'notFound' },
      );
      const ended = await store.get(c.id);
      assert.equal(ended?.state, 'terminated');
      assert.equal(ended?.endedAt, T0 + 5);
      assert.equal(ended?.deadline, null);
      assert.equal(await store.findLive(c.id, A, T0 + 5), undefined);
      assert.equal((await store.keepAlive(c.id, A, T0 + 6, T0 + 100)).ok, false);
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
          queued.map((e) => e.fact.transition),
          ['created', 'established', 'ended'],
        );
        assert.deepEqual(lines(queued), ['updated/establishing', 'updated/established', 'updated/terminating', 'deleted/terminated']);
        assert.ok(queued.every((e) => e.status === 'pending' && e.callbackUri === 'https://bot/cb' && e.attempts === 0));
        // Facts, not rendered bodies: the call as it was, and the result.
        const [, established, ended] = queued.map((e) => e.fact);
        assert.ok(ended && ended.transition !== 'notification' && established && established.transition !== 'notification');
        assert.deepEqual(ended.result, HANGUP);
        assert.equal(ended.snapshot.id, c.id);
        assert.deepEqual(ended.snapshot.owner, A);
        assert.deepEqual(ended.snapshot.resource, c.resource);
        assert.equal(established.snapshot.state, 'established');
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
        assert.ok(claimed.every((e) => e.fact.transition === 'created'));
        assert.deepEqual(await fresh.claimDeliveries(T0 + 5, 10, T0 + 1_000), [], 'leased heads block their calls');
        const head1 = claimed.find((e) => e.callId === c1.id);
        assert.ok(head1);
        assert.deepEqual(await fresh.finishDelivery(head1.seq, head1.lease, DELIVERED, { status: 'delivered' }), { ok: true });
        const next = await fresh.claimDeliveries(T0 + 6, 10, T0 + 1_000);
        assert.deepEqual(
          next.map((e) => e.fact.transition),
          ['ended'],
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
          e.lease,
          { attempt: 1, at: T0, statusCode: 503, latencyMs: 2.5, error: 'HTTP 503', outcome: 'retry' },
          { status: 'pending', nextAttemptAt: T0 + 500 },
        );
        assert.equal(await fresh.nextDeliveryAt(), T0 + 500);
        assert.deepEqual(await fresh.claimDeliveries(T0 + 499, 10, T0 + 600), []);
        const [retry] = await fresh.claimDeliveries(T0 + 500, 10, T0 + 600);
        assert.equal(retry?.attempts, 1);
        assert.ok(retry && retry.lease > e.lease, 'every claim issues a larger fencing token');
        await fresh.finishDelivery(
          e.seq,
          retry.lease,
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
        assert.ok(a.ok);
        assert.equal(a.value.state, 'establishing');
        assert.equal(a.value.deadline, T0 + 45_001);
        assert.equal(a.value.resource.callbackUri, 'https://bot/answer');
        assert.deepEqual(
          await fresh.answer(answered.id, A, T0 + 2, { deadline: T0 + 9, establishAt: T0 + 9, resource: {} }),
          { ok: false, reason: 'wrongState', state: 'establishing' },
          'not twice',
        );
        assert.deepEqual(
          await fresh.end(answered.id, A, T0 + 2, HANGUP, 'incoming'),
          { ok: false, reason: 'wrongState', state: 'establishing' },
          'no longer incoming',
        );
        assert.deepEqual(
          await fresh.end(answered.id, B, T0 + 2, HANGUP, 'incoming'),
          { ok: false, reason: 'notFound' },
          "another app's call is not found, whatever its state",
        );
        assert.deepEqual(await fresh.answer('nope', A, T0 + 2, { deadline: T0 + 9, establishAt: T0 + 9, resource: {} }), {
          ok: false,
          reason: 'notFound',
        });
        const rejected = ring();
        await fresh.create(rejected);
        assert.deepEqual(
          await fresh.answer(rejected.id, B, T0 + 1, { deadline: T0 + 9, establishAt: T0 + 9, resource: {} }),
          { ok: false, reason: 'notFound' },
          'owner only',
        );
        const r = await fresh.end(rejected.id, A, T0 + 1, HANGUP, 'incoming');
        assert.equal(r.ok && r.value.state, 'terminated');
        const unanswered = ring();
        await fresh.create(unanswered);
        const expired = await fresh.expireDue(T0 + 15_000, 10, RESULTS);
        assert.deepEqual(
          expired.map((c) => [c.id, c.resultInfo]),
          [[unanswered.id, UNANSWERED_RESULT]],
        );
        assert.deepEqual(
          expired[0]?.resource,
          unanswered.resource,
          'an incoming call comes with its resource (the log names a policy bot)',
        );
        const queued = (await fresh.listDeliveries({ callId: unanswered.id, limit: 10 })).reverse();
        assert.deepEqual(lines(queued), ['created/incoming', 'updated/terminating', 'deleted/terminated']);
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

    test('a stale lease changes nothing: the newer claim decides, and the call is promoted once', async () => {
      const fresh = await open();
      try {
        const c = newCall({ establishAt: null });
        await fresh.create(c);
        await fresh.end(c.id, A, T0 + 1, HANGUP);
        const [slow] = await fresh.claimDeliveries(T0 + 1, 10, T0 + 100);
        assert.ok(slow);
        // The slow claimer's lease runs out; another claims the same entry under a new token.
        const [fast] = await fresh.claimDeliveries(T0 + 100, 10, T0 + 200);
        assert.equal(fast?.seq, slow.seq);
        assert.ok(fast && fast.lease > slow.lease);
        assert.deepEqual(await fresh.finishDelivery(fast.seq, fast.lease, DELIVERED, { status: 'delivered' }), { ok: true });
        // The slow one finishes late, with a failure: nothing changes.
        const late = { attempt: 1, at: T0 + 150, statusCode: 500, latencyMs: 1, error: 'HTTP 500', outcome: 'retry' } as const;
        assert.deepEqual(await fresh.finishDelivery(slow.seq, slow.lease, late, { status: 'pending', nextAttemptAt: T0 + 160 }), {
          ok: false,
          reason: 'staleLease',
        });
        const [head] = await fresh.listDeliveries({ callId: c.id, limit: 10, status: 'delivered' });
        assert.equal(head?.seq, slow.seq, 'still delivered');
        assert.equal(head?.attemptLog.length, 1, 'the stale attempt is not recorded');
        // The call's next entry was promoted once: one claim returns it, the next returns nothing.
        const next = await fresh.claimDeliveries(T0 + 150, 10, T0 + 300);
        assert.deepEqual(
          next.map((e) => e.fact.transition),
          ['ended'],
        );
        assert.deepEqual(await fresh.claimDeliveries(T0 + 150, 10, T0 + 300), []);
        assert.deepEqual(await fresh.finishDelivery(999_999, 1, DELIVERED, { status: 'delivered' }), { ok: false, reason: 'notFound' });
      } finally {
        await fresh.close();
      }
    });

    test('an expiry sweep queues each ended fact within the outbox bounds, with the call as it was', async () => {
      const fresh = await open({ outboxBounds: { perCall: 2, total: 4 } });
      try {
        // a has two facts pending (created, established); b and c one each: 4, at the bound.
        // b's resource has JSON a sweep must carry over as it is, and no string callbackUri.
        const odd = { callbackUri: 42, tags: ['x', { y: null }], unicode: 'é ☃', big: 1.5e300 };
        const [a, b, c] = [
          newCall({ deadline: T0 + 100, establishAt: T0 + 10 }),
          newCall({ deadline: T0 + 100, establishAt: null, resource: odd }),
          newCall({ deadline: T0 + 100, establishAt: null }),
        ] as [NewCall, NewCall, NewCall];
        for (const x of [a, b, c]) await fresh.create(x);
        await fresh.establishDue(T0 + 10, 10);
        assert.deepEqual(await fresh.outboxStats(), { pending: 4, overflowed: 0 });
        const ended = await fresh.expireDue(T0 + 100, 10, RESULTS);
        assert.deepEqual(ended.map((x) => x.id).sort(), [a.id, b.id, c.id].sort());
        // Three ended facts: a's oldest goes for its own bound, then the oldest in all (b's and c's created).
        assert.deepEqual(await fresh.outboxStats(), { pending: 4, overflowed: 3 });
        const statuses = async (x: NewCall) =>
          (await fresh.listDeliveries({ callId: x.id, limit: 10 })).reverse().map((e) => [e.fact.transition, e.status]);
        assert.deepEqual(await statuses(a), [
          ['created', 'dead'],
          ['established', 'pending'],
          ['ended', 'pending'],
        ]);
        for (const x of [b, c])
          assert.deepEqual(await statuses(x), [
            ['created', 'dead'],
            ['ended', 'pending'],
          ]);
        // Due now: the heads of the lines, a's established (a's ended waits behind it), b's and c's ended.
        const due = await fresh.claimDeliveries(T0 + 100, 10, T0 + 1_000);
        assert.deepEqual(due.map((e) => `${e.callId === a.id ? 'a' : e.callId === b.id ? 'b' : 'c'} ${e.fact.transition}`).sort(), [
          'a established',
          'b ended',
          'c ended',
        ]);
        const bEnded = due.find((e) => e.callId === b.id);
        assert.equal(bEnded?.callbackUri, '', 'a callbackUri that is not a string is none');
        assert.deepEqual(bEnded?.fact, {
          transition: 'ended',
          result: KEEPALIVE_TIMEOUT_RESULT,
          snapshot: { id: b.id, owner: A, direction: 'outgoing', state: 'terminated', resource: odd },
        });
        const cEnded = due.find((e) => e.callId === c.id);
        assert.equal(cEnded?.callbackUri, 'https://bot/cb');
        assert.deepEqual(lines(cEnded ? [cEnded] : []), ['updated/terminating', 'deleted/terminated']);
      } finally {
        await fresh.close();
      }
    });

    test('the outbox bounds dead-letter the oldest pending entries, counted, per call and in all', async () => {
      const fresh = await open({ outboxBounds: { perCall: 2, total: 3 } });
      try {
        // Per call: created, established, ended = 3 facts for a bound of 2.
        const c = newCall({ deadline: T0 + 45_000, establishAt: T0 + 10 });
        await fresh.create(c);
        await fresh.establishDue(T0 + 10, 10);
        assert.deepEqual(await fresh.outboxStats(), { pending: 2, overflowed: 0 });
        await fresh.end(c.id, A, T0 + 20, HANGUP);
        let entries = (await fresh.listDeliveries({ callId: c.id, limit: 10 })).reverse();
        assert.deepEqual(
          entries.map((e) => [e.fact.transition, e.status, e.deadReason ?? null]),
          [
            ['created', 'dead', 'overflow'],
            ['established', 'pending', null],
            ['ended', 'pending', null],
          ],
        );
        assert.deepEqual(await fresh.outboxStats(), { pending: 2, overflowed: 1 });
        // The call's line moved on: its new head is due now.
        const [head] = await fresh.claimDeliveries(T0 + 20, 10, T0 + 100);
        assert.equal(head?.fact.transition, 'established');
        // In all: two more calls make 4 pending for a bound of 3; the oldest (the leased head) goes.
        await fresh.create(newCall({ establishAt: null }));
        await fresh.create(newCall({ establishAt: null }));
        assert.deepEqual(await fresh.outboxStats(), { pending: 3, overflowed: 2 });
        entries = (await fresh.listDeliveries({ callId: c.id, limit: 10 })).reverse();
        assert.deepEqual(
          entries.map((e) => e.status),
          ['dead', 'dead', 'pending'],
        );
        // Its claimer finishes late: the bound's decision stands (fencing).
        assert.ok(head);
        assert.deepEqual(await fresh.finishDelivery(head.seq, head.lease, DELIVERED, { status: 'delivered' }), {
          ok: false,
          reason: 'staleLease',
        });
        const due = await fresh.claimDeliveries(T0 + 30, 10, T0 + 100);
        assert.deepEqual(due.map((e) => e.fact.transition).sort(), ['created', 'created', 'ended']);
      } finally {
        await fresh.close();
      }
    });

    test('the clock: initialised once, advanced atomically, rebased on a new scale, never back', async () => {
      const fresh = await open();
      try {
        assert.equal(await fresh.readClock(), undefined);
        const first = await fresh.initClock(initialClockState(60, 1_000, T0), 1_000);
        assert.equal(virtualAt(first, 2_000), T0 + 60_000);
        // A second instance starting later with its own idea of time gets the stored one.
        const second = await fresh.initClock(initialClockState(60, 5_000, T0 + 999_999_999), 5_000);
        assert.equal(virtualAt(second, 5_000), T0 + 240_000);
        const advanced = await fresh.advanceClock(45 * 60_000, 5_000);
        assert.equal(virtualAt(advanced, 5_000), T0 + 240_000 + 45 * 60_000);
        assert.ok(advanced.version > second.version);
        assert.deepEqual(await fresh.readClock(), advanced);
        // A restart at another scale goes on from the same moment, at the new pace.
        const rebased = await fresh.initClock(initialClockState(1, 6_000), 6_000);
        assert.equal(rebased.scale, 1);
        assert.equal(virtualAt(rebased, 6_000), virtualAt(advanced, 6_000));
        assert.equal(virtualAt(rebased, 7_000), virtualAt(advanced, 6_000) + 1_000);
        // A wall clock stepped back cannot take virtual time back.
        assert.equal(virtualAt(rebased, 0), virtualAt(advanced, 6_000));
        assert.equal(virtualAt(advanceStep(rebased, 10, 0), 0), virtualAt(advanced, 6_000) + 10);
      } finally {
        await fresh.close();
      }
    });

    test('the change feed tells watchers of advances and new apps', async () => {
      const fresh = await open();
      try {
        const seen: string[] = [];
        const stop = fresh.watch((c) => seen.push(c.kind === 'clock' ? `clock ${c.state.offset}` : c.kind));
        await fresh.initClock(initialClockState(1, 0, T0), 0);
        await fresh.advanceClock(500, 0);
        await fresh.addApp({ ...DEFAULT_APP, clientId: randomUUID() }, 10);
        for (let i = 0; i < 200 && !seen.includes('apps'); i++) await new Promise((r) => setTimeout(r, 10));
        stop();
        assert.ok(seen.includes('clock 500'), seen.join());
        assert.ok(seen.includes('apps'), seen.join());
      } finally {
        await fresh.close();
      }
    });

    test('apps: one record each, an atomic add, a count limit, case-insensitive ids', async () => {
      const fresh = await open();
      try {
        const app = (id: string) => ({ ...DEFAULT_APP, displayName: id, clientId: id });
        const one = randomUUID();
        assert.deepEqual(await fresh.addApp(app(one), 3), { ok: true });
        assert.deepEqual(await fresh.addApp(app(one.toUpperCase()), 3), { ok: false, reason: 'exists' });
        assert.equal((await fresh.findApp(one.toUpperCase()))?.displayName, one);
        const results = await Promise.all([randomUUID(), randomUUID(), randomUUID()].map((id) => fresh.addApp(app(id), 3)));
        assert.equal(results.filter((r) => r.ok).length, 2);
        assert.deepEqual(
          results.find((r) => !r.ok),
          { ok: false, reason: 'limit' },
        );
        assert.equal((await fresh.listApps()).length, 3);
        assert.equal((await fresh.listApps())[0]?.clientId, one, 'in the order added');
        assert.equal(await fresh.findApp(randomUUID()), undefined);
        assert.equal((await fresh.clearApps()).length, 3);
        assert.deepEqual(await fresh.listApps(), []);
        assert.deepEqual(await fresh.addApp(app(one), 3), { ok: true }, 'a cleared id can be registered again');
      } finally {
        await fresh.close();
      }
    });

    if (openPair) {
      describe('two handles on the same data (as two instances)', () => {
        test('a change through one is seen through the other; exactly one of two ends wins', async () => {
          const [x, y] = await openPair();
          try {
            const c = newCall();
            await x.create(c);
            assert.equal((await y.keepAlive(c.id, A, T0 + 10, T0 + 90_000)).ok, true);
            assert.equal((await x.get(c.id))?.deadline, T0 + 90_000);
            const ends = await Promise.all([x.end(c.id, A, T0 + 20, HANGUP), y.end(c.id, null, T0 + 20, KEEPALIVE_TIMEOUT_RESULT)]);
            assert.equal(ends.filter((r) => r.ok).length, 1);
            assert.equal((await y.listDeliveries({ callId: c.id, limit: 10 })).filter((e) => e.fact.transition === 'ended').length, 1);
          } finally {
            await Promise.all([x.close(), y.close()]);
          }
        });

        test('interleaved sweeps and claims: every call ends once, every entry is claimed once', async () => {
          const [x, y] = await openPair();
          try {
            const calls = Array.from({ length: 60 }, (_, i) => newCall({ deadline: T0 + 100 + i, establishAt: null }));
            await Promise.all(calls.map((c, i) => (i % 2 ? x : y).create(c)));
            const ended: string[] = [];
            const sweep = async (s: Store) => {
              for (;;) {
                const batch = await s.expireDue(T0 + 1_000, 7, RESULTS);
                ended.push(...batch.map((c) => c.id));
                if (batch.length === 0) return;
              }
            };
            await Promise.all([sweep(x), sweep(y), sweep(x), sweep(y)]);
            assert.equal(ended.length, 60);
            assert.equal(new Set(ended).size, 60);
            const claimed: number[] = [];
            const claim = async (s: Store) => {
              for (;;) {
                const batch = await s.claimDeliveries(T0 + 1_000, 5, T0 + 50_000);
                claimed.push(...batch.map((e) => e.seq));
                if (batch.length === 0) return;
              }
            };
            await Promise.all([claim(x), claim(y), claim(x), claim(y)]);
            assert.equal(claimed.length, 60, "each call's head once");
            assert.equal(new Set(claimed).size, 60);
          } finally {
            await Promise.all([x.close(), y.close()]);
          }
        });

        test('concurrent keepAlives and an end: the end wins once, no keepAlive revives the call', async () => {
          const [x, y] = await openPair();
          try {
            const c = newCall();
            await x.create(c);
            const ops = [];
            for (let i = 0; i < 20; i++) ops.push((i % 2 ? x : y).keepAlive(c.id, A, T0 + 100 + i, T0 + 100_000 + i));
            ops.push(x.end(c.id, A, T0 + 110, HANGUP));
            for (let i = 20; i < 40; i++) ops.push((i % 2 ? x : y).keepAlive(c.id, A, T0 + 100 + i, T0 + 100_000 + i));
            await Promise.all(ops);
            const after = await y.get(c.id);
            assert.equal(after?.state, 'terminated');
            assert.equal(after?.deadline, null);
            assert.equal(await x.findLive(c.id, A, T0 + 200), undefined);
          } finally {
            await Promise.all([x.close(), y.close()]);
          }
        });

        test('advances through both handles add up; adds of apps through both are all kept', async () => {
          const [x, y] = await openPair();
          try {
            await x.initClock(initialClockState(1, 0, T0), 0);
            await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? x : y).advanceClock(1_000, 0)));
            const state = await y.readClock();
            assert.ok(state);
            assert.equal(virtualAt(state, 0), T0 + 20_000);
            const ids = Array.from({ length: 20 }, () => randomUUID());
            const added = await Promise.all(ids.map((id, i) => (i % 2 ? x : y).addApp({ ...DEFAULT_APP, clientId: id }, 100)));
            assert.ok(added.every((r) => r.ok));
            assert.equal((await x.listApps()).length, 20);
            const dup = await Promise.all([
              x.addApp({ ...DEFAULT_APP, clientId: ids[0] ?? '' }, 100),
              y.addApp({ ...DEFAULT_APP, clientId: randomUUID() }, 21),
            ]);
            assert.deepEqual(dup[0], { ok: false, reason: 'exists' });
            assert.deepEqual(dup[1], { ok: true });
          } finally {
            await Promise.all([x.close(), y.close()]);
          }
        });

        test('a stale finish through one handle cannot undo a delivery through the other', async () => {
          const [x, y] = await openPair();
          try {
            const c = newCall({ establishAt: null });
            await x.create(c);
            const [slow] = await x.claimDeliveries(T0, 10, T0 + 10);
            const [fast] = await y.claimDeliveries(T0 + 10, 10, T0 + 20);
            assert.ok(slow && fast && slow.seq === fast.seq);
            const [a, b] = await Promise.all([
              y.finishDelivery(fast.seq, fast.lease, DELIVERED, { status: 'delivered' }),
              x.finishDelivery(
                slow.seq,
                slow.lease,
                { ...DELIVERED, statusCode: 500, outcome: 'retry' },
                { status: 'pending', nextAttemptAt: T0 + 11 },
              ),
            ]);
            assert.deepEqual([a, b], [{ ok: true }, { ok: false, reason: 'staleLease' }]);
            assert.equal((await x.listDeliveries({ callId: c.id, limit: 1 }))[0]?.status, 'delivered');
          } finally {
            await Promise.all([x.close(), y.close()]);
          }
        });
      });
    }

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
