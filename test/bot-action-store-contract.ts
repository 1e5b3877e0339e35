import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { CallOwner } from '../src/calls/call-types.js';
import { OPERATION_RESULTS, type OperationRecord } from '../src/calls/operations.js';
import type { NewParticipant } from '../src/calls/participants.js';
import { renderNotifications } from '../src/notifications/render.js';
import type { BotActionStore, CallScope } from '../src/store/bot-action-store.js';
import type { CallStore } from '../src/store/call-store.js';

const A: CallOwner = { appId: 'app-a', tenantId: 'tenant-1' };
const B: CallOwner = { appId: 'app-b', tenantId: 'tenant-1' };
const T0 = Date.UTC(2026, 0, 1);

export interface BotStores {
  calls: CallStore;
  bots: BotActionStore;
}

function person(callId: string, name: string, isBot = false): NewParticipant {
  return {
    id: randomUUID(),
    callId,
    info: { identity: { user: { id: randomUUID(), displayName: name } } },
    isBot,
    isMuted: false,
    serverMuted: false,
    isInLobby: false,
    sharingScreen: false,
    recordingStatus: null,
    metadata: null,
    joinedAt: T0,
  };
}

function op(callId: string, kind: OperationRecord['kind'], dueIn: number | null, extra: Partial<OperationRecord> = {}): OperationRecord {
  return {
    id: randomUUID(),
    callId,
    kind,
    status: dueIn === null ? 'completed' : 'running',
    clientContext: `ctx-${kind}`,
    resultInfo: null,
    createdAt: T0,
    dueAt: dueIn === null ? null : T0 + dueIn,
    completedAt: null,
    result: OPERATION_RESULTS.completed,
    effects: {},
    data: {},
    ...extra,
  };
}

/**
 * The behaviour every BotActionStore must have, with the CallStore it sits beside. `open` gives
 * fresh, empty stores; `openSecond`, when the stores can be shared, a second handle on the same
 * data (another instance), for the exclusivity of due work.
 */
export function botActionStoreContract(
  name: string,
  open: () => Promise<BotStores>,
  openSecond?: (first: BotStores) => Promise<BotStores>,
): void {
  describe(`BotActionStore contract: ${name}`, () => {
    let s: BotStores;
    before(async () => {
      s = await open();
    });
    after(() => s.calls.close());

    async function liveCall(owner = A): Promise<string> {
      const id = randomUUID();
      await s.calls.create({
        id,
        owner,
        state: 'establishing',
        direction: 'outgoing',
        createdAt: T0,
        deadline: T0 + 3_600_000,
        establishAt: T0,
        resource: { callbackUri: 'https://bot/cb' },
      });
      await s.calls.establishDue(T0, 1000);
      return id;
    }
    const scope = (callId: string, owner: CallOwner | null = A, now = T0): CallScope => ({ callId, owner, now });
    /** What the call's outbox line holds, oldest first, as "path changeType". */
    const queued = async (callId: string) =>
      (await s.calls.listDeliveries({ callId, limit: 1000 }))
        .reverse()
        .flatMap((e) => renderNotifications(e.fact))
        .map((n) => `${n.resourcePath ?? ''} ${n.changeType}${n.resourceList ? ` [${n.resourceList.length}]` : ''}`);

    test('a roster is seeded once, notified once, behind the call state; people who left are not seeded back', async () => {
      const id = await liveCall();
      const call = await s.calls.get(id);
      assert.ok(call);
      const bot = person(id, 'bot', true);
      const other = person(id, 'other');
      assert.equal(await s.bots.seedRoster(call, [bot, other], T0), true);
      assert.equal(await s.bots.seedRoster(call, [bot, other], T0), false);
      assert.deepEqual(await queued(id), [' updated', ' updated', '/participants updated [2]']);
      const left = await s.bots.leave(scope(id), other.id);
      assert.ok(left.ok);
      assert.equal(await s.bots.seedRoster(call, [bot, other], T0), false);
      const roster = await s.bots.roster(scope(id));
      assert.deepEqual(roster.ok && roster.value.map((p) => p.id), [bot.id]);
    });

    test('refusals are tagged: unknown, foreign or ended calls; unknown participants; the bot itself', async () => {
      const id = await liveCall();
      const call = await s.calls.get(id);
      assert.ok(call);
      const bot = person(id, 'bot', true);
      await s.bots.seedRoster(call, [bot], T0);
      assert.deepEqual(await s.bots.roster(scope('nope')), { ok: false, reason: 'callNotFound' });
      assert.deepEqual(await s.bots.roster(scope(id, B)), { ok: false, reason: 'callNotFound' });
      assert.deepEqual(await s.bots.participant(scope(id), 'nobody'), { ok: false, reason: 'participantNotFound' });
      assert.deepEqual(await s.bots.leave(scope(id), bot.id), { ok: false, reason: 'isBot' });
      assert.deepEqual(await s.bots.operation(scope(id), 'nope'), { ok: false, reason: 'operationNotFound' });
      // Past its deadline a call is gone, even before any sweep ran.
      assert.deepEqual(await s.bots.join(scope(id, A, T0 + 3_600_000), [person(id, 'late')]), { ok: false, reason: 'callNotFound' });
      const control = await s.bots.join(scope(id, null), [person(id, 'by control')]);
      assert.ok(control.ok && control.value.length === 2);
    });

    test('a participant change is notified only when something changed', async () => {
      const id = await liveCall();
      const p = person(id, 'p');
      await s.bots.join(scope(id), [p]);
      const before = (await queued(id)).length;
      const muted = await s.bots.updateParticipant(scope(id), p.id, { isMuted: true });
      assert.ok(muted.ok && muted.value.isMuted);
      await s.bots.updateParticipant(scope(id), p.id, { isMuted: true });
      assert.equal((await queued(id)).length, before + 1);
    });

    test('media operations queue behind running ones; due steps run at their own moment, completion queued', async () => {
      const id = await liveCall();
      const first = await s.bots.startOperation(scope(id), op(id, 'playPrompt', 3_000), { queued: true });
      const second = await s.bots.startOperation(scope(id), op(id, 'playPrompt', 3_000), { queued: true });
      assert.ok(first.ok && second.ok);
      assert.equal(second.value.dueAt, T0 + 6_000);
      assert.equal(await s.bots.nextDueAt(), T0 + 3_000);
      const ran = await s.bots.runDue(T0 + 10_000, 100);
      const mine = ran.filter((r) => r.op.callId === id);
      assert.deepEqual(
        mine.map((r) => [r.op.id, r.op.status, r.op.completedAt]),
        [
          [first.value.id, 'completed', T0 + 3_000],
          [second.value.id, 'completed', T0 + 6_000],
        ],
      );
      assert.deepEqual((await queued(id)).slice(-2), [`/operations/${first.value.id} deleted`, `/operations/${second.value.id} deleted`]);
      assert.equal((await s.bots.runDue(T0 + 10_000, 100)).filter((r) => r.op.callId === id).length, 0);
    });

    test('a multi-step operation moves the call through states, then completes; an ended call drops its operations', async () => {
      const id = await liveCall();
      const transfer = op(id, 'transfer', 1_000, {
        effects: { callState: 'transferAccepted', next: { afterMs: 1_000, effects: { endCall: OPERATION_RESULTS.transferred } } },
      });
      await s.bots.startOperation(scope(id), transfer, { callState: 'transferring' });
      assert.equal((await s.calls.get(id))?.state, 'transferring');
      const step1 = (await s.bots.runDue(T0 + 1_000, 100)).find((r) => r.op.id === transfer.id);
      assert.equal(step1?.op.status, 'running');
      assert.equal((await s.calls.get(id))?.state, 'transferAccepted');
      const step2 = (await s.bots.runDue(T0 + 2_000, 100)).find((r) => r.op.id === transfer.id);
      assert.deepEqual(step2?.ran.endCall, OPERATION_RESULTS.transferred);
      const gone = await liveCall();
      const prompt = op(gone, 'playPrompt', 5_000);
      await s.bots.startOperation(scope(gone), prompt, {});
      await s.calls.end(gone, null, T0 + 1_000, { code: 200, subcode: 7000, message: 'bye' });
      assert.equal(
        (await s.bots.runDue(T0 + 5_000, 100)).find((r) => r.op.id === prompt.id),
        undefined,
      );
      assert.ok(!(await queued(gone)).some((l) => l.includes(prompt.id)));
    });

    test('cancelMedia fails running prompts and recordings only', async () => {
      const id = await liveCall();
      const prompt = op(id, 'playPrompt', 3_000);
      const invite = op(id, 'invite', 3_000);
      await s.bots.startOperation(scope(id), prompt, {});
      await s.bots.startOperation(scope(id), invite, {});
      const canceled = await s.bots.cancelMedia(scope(id, A, T0 + 1_000));
      assert.ok(canceled.ok);
      assert.deepEqual(
        canceled.value.map((o) => [o.id, o.status, o.resultInfo?.subcode]),
        [[prompt.id, 'failed', 8508]],
      );
      const left = await s.bots.operation(scope(id), invite.id);
      assert.equal(left.ok && left.value.status, 'running');
    });

    test('tones notify only a subscribed call, with rising sequence ids; a stop tone ends a listening recording', async () => {
      const id = await liveCall();
      const quiet = await s.bots.tones(scope(id), ['tone1']);
      assert.deepEqual(quiet, { ok: true, value: { notified: 0, stopped: [] } });
      await s.bots.startOperation(scope(id), op(id, 'subscribeToTone', null), { toneSubscribed: true });
      const rec = op(id, 'recordResponse', 10_000, {
        data: {
          recording: {
            startAt: T0 + 2_000,
            maxSilenceMs: 1_000,
            stopTones: ['pound'],
            location: 'x',
            accessToken: 't',
            completionReason: 'maxRecordDurationReached',
          },
        },
      });
      await s.bots.startOperation(scope(id), rec, {});
      const early = await s.bots.tones(scope(id, A, T0 + 1_000), ['pound']);
      assert.ok(early.ok && early.value.notified === 1 && early.value.stopped.length === 0, 'not listening yet');
      const later = await s.bots.tones(scope(id, A, T0 + 3_000), ['tone2', 'pound']);
      assert.ok(later.ok);
      assert.equal(later.value.notified, 2);
      assert.deepEqual(
        later.value.stopped.map((o) => [o.id, o.resultInfo?.subcode, o.completedAt]),
        [[rec.id, 8514, T0 + 3_000]],
      );
      const tones = (await s.calls.listDeliveries({ callId: id, limit: 100 }))
        .flatMap((e) => renderNotifications(e.fact))
        .map((n) => n.resourceData.toneInfo as { sequenceId: number } | undefined)
        .filter((t) => t !== undefined)
        .map((t) => t.sequenceId)
        .sort();
      assert.deepEqual(tones, [1, 2, 3]);
    });

    test('silence ends a recording maxSilence after listening starts', async () => {
      const id = await liveCall();
      const rec = op(id, 'recordResponse', 60_000, {
        data: {
          recording: { startAt: T0 + 2_000, maxSilenceMs: 1_500, stopTones: [], location: 'x', accessToken: 't', completionReason: 'x' },
        },
      });
      await s.bots.startOperation(scope(id), rec, {});
      const changed = await s.bots.silence(scope(id, A, T0));
      assert.ok(changed.ok);
      assert.equal(changed.value[0]?.dueAt, T0 + 3_500);
      assert.deepEqual(changed.value[0]?.result, OPERATION_RESULTS.maxSilence);
    });

    if (openSecond) {
      test('two instances sharing the store: each due step runs exactly once', async () => {
        const other = await openSecond(s);
        try {
          const id = await liveCall();
          const ids: string[] = [];
          for (let i = 0; i < 50; i++) {
            const o = op(id, 'invite', 1_000 + i);
            ids.push(o.id);
            await s.bots.startOperation(scope(id), o, {});
          }
          const [x, y] = await Promise.all([s.bots.runDue(T0 + 2_000, 7), other.bots.runDue(T0 + 2_000, 7)]);
          const rest: string[] = [];
          for (;;) {
            const [p, q] = await Promise.all([s.bots.runDue(T0 + 2_000, 7), other.bots.runDue(T0 + 2_000, 7)]);
            if (p.length + q.length === 0) break;
            rest.push(...[...p, ...q].map((r) => r.op.id));
          }
          const all = [...x, ...y]
            .map((r) => r.op.id)
            .concat(rest)
            .filter((i) => ids.includes(i));
          assert.equal(all.length, 50);
          assert.equal(new Set(all).size, 50);
        } finally {
          await other.calls.close();
        }
      });

      test('two instances sharing the store: a prompt that one runs as due while the other cancels it ends once', async () => {
        const other = await openSecond(s);
        try {
          for (let i = 0; i < 10; i++) {
            const id = await liveCall();
            const prompt = op(id, 'playPrompt', 1_000);
            await s.bots.startOperation(scope(id), prompt, {});
            const [ran, canceled] = await Promise.all([s.bots.runDue(T0 + 1_000, 100), other.bots.cancelMedia(scope(id, A, T0 + 999))]);
            const byRun = ran.filter((r) => r.op.id === prompt.id).map((r) => r.op.status);
            const byCancel = canceled.ok ? canceled.value.map((o) => o.status) : [];
            assert.equal(byRun.length + byCancel.length, 1, `ended once, by the sweep (${byRun}) or the cancel (${byCancel})`);
            const stored = await s.bots.operation(scope(id), prompt.id);
            assert.equal(stored.ok && stored.value.status, byRun.length ? 'completed' : 'failed');
            assert.equal((await queued(id)).filter((l) => l.includes(prompt.id)).length, 1, 'one completion notification');
          }
        } finally {
          await other.calls.close();
        }
      });

      test('two instances sharing the store: a join racing a hang-up lands before it or not at all', async () => {
        const other = await openSecond(s);
        try {
          const outcomes = new Set<string>();
          for (let i = 0; i < 20; i++) {
            const id = await liveCall();
            const [, joined] = await Promise.all([
              other.calls.end(id, null, T0 + 10, { code: 200, subcode: 7000, message: 'bye' }),
              s.bots.join(scope(id, A, T0 + 10), [person(id, 'racer')]),
            ]);
            outcomes.add(joined.ok ? 'joined' : joined.reason);
            const facts = (await s.calls.listDeliveries({ callId: id, limit: 100 })).reverse().map((e) => e.fact.transition);
            assert.equal(facts.at(-1), 'ended', `nothing is queued behind the end: ${facts}`);
            assert.equal(facts.filter((f) => f === 'notification').length, joined.ok ? 1 : 0);
          }
          assert.ok(
            [...outcomes].every((o) => o === 'joined' || o === 'callNotFound'),
            [...outcomes].join(),
          );
        } finally {
          await other.calls.close();
        }
      });

      test('two instances sharing the store: joins at once all land, each roster notification one person longer', async () => {
        const other = await openSecond(s);
        try {
          const id = await liveCall();
          const people = Array.from({ length: 20 }, (_, i) => person(id, `p${i}`));
          const results = await Promise.all(people.map((p, i) => (i % 2 ? other : s).bots.join(scope(id), [p])));
          assert.ok(results.every((r) => r.ok));
          const roster = await s.bots.roster(scope(id));
          assert.deepEqual(roster.ok && roster.value.map((p) => p.id).sort(), people.map((p) => p.id).sort());
          assert.deepEqual(
            roster.ok && new Set(roster.value.map((p) => p.sourceId)).size,
            20,
            'every participant has its own media source id',
          );
          const sizes = (await queued(id)).filter((l) => l.startsWith('/participants')).map((l) => l.split(' ')[2]);
          assert.deepEqual(
            sizes,
            people.map((_, i) => `[${i + 1}]`),
          );
        } finally {
          await other.calls.close();
        }
      });

      test('two instances sharing the store: tones at once get distinct sequence ids; prompts at once queue behind each other', async () => {
        const other = await openSecond(s);
        try {
          const id = await liveCall();
          await s.bots.startOperation(scope(id), op(id, 'subscribeToTone', null), { toneSubscribed: true });
          const sent = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? other : s).bots.tones(scope(id), ['tone1'])));
          assert.ok(sent.every((r) => r.ok && r.value.notified === 1));
          const sequenceIds = (await s.calls.listDeliveries({ callId: id, limit: 100 }))
            .reverse()
            .flatMap((e) => renderNotifications(e.fact))
            .map((n) => (n.resourceData.toneInfo as { sequenceId: number } | undefined)?.sequenceId)
            .filter((t) => t !== undefined);
          assert.deepEqual(
            sequenceIds,
            Array.from({ length: 12 }, (_, i) => i + 1),
          );
          const prompts = await Promise.all(
            Array.from({ length: 6 }, (_, i) =>
              (i % 2 ? other : s).bots.startOperation(scope(id), op(id, 'playPrompt', 3_000), { queued: true }),
            ),
          );
          const dues = prompts.map((p) => (p.ok ? p.value.dueAt : null)).sort((a, b) => (a ?? 0) - (b ?? 0));
          assert.deepEqual(
            dues,
            Array.from({ length: 6 }, (_, i) => T0 + 3_000 * (i + 1)),
          );
        } finally {
          await other.calls.close();
        }
      });
    }
  });
}
