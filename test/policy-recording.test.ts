/**
 * A policy-based (compliance) recording bot has 5 s to answer an incoming call, other bots 15 s
 * (https://learn.microsoft.com/graph/api/call-answer; docs/decisions.md, "Policy-based recording calls").
 * Virtual time on a ManualClock: no real sleeps.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { type GraphErrorBody, startServer, type TestServer } from './helpers.js';
import { Receiver } from './receiver.js';

const ENDED = ['updated/terminating', 'deleted/terminated'];
const EPSILON = 1;

describe('the answer window of a policy-based recording call', () => {
  let s: TestServer;
  let bot: Receiver;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());
  beforeEach(async () => {
    bot = await new Receiver().start();
  });
  afterEach(() => bot.stop());

  const step = async (ms: number) => {
    await s.advance(ms);
    await s.ck.notifier.flush();
  };
  const ring = async (body: Record<string, unknown> = {}) => {
    const res = await fetch(`${s.base}/_callkeeper/incoming-calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ appId: DEFAULT_APP.clientId, callbackUri: bot.url, ...body }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    return (await res.json()) as { id: string; answerByDateTime: string };
  };
  const answer = (id: string) =>
    s.graph(`/v1.0/communications/calls/${id}/answer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        callbackUri: bot.url,
        mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
        acceptedModalities: ['audio'],
      }),
    });
  const resultOf = (id: string) =>
    bot.received
      .flatMap((r) => r.body.value)
      .find((n) => n.resourceUrl === `/communications/calls/${id}` && n.resourceData.state === 'terminated')?.resourceData.resultInfo as
      | { code: number; subcode: number }
      | undefined;

  test('unanswered at 5 s + epsilon it ends with 408/10057, notified; the incoming call named whom it records', async () => {
    const ringAt = s.clock.now();
    const { id, answerByDateTime } = await ring({ policyBasedRecording: true });
    assert.equal(Date.parse(answerByDateTime), ringAt + 5_000);
    await s.ck.notifier.flush();
    const created = bot.received[0]?.body.value[0]?.resourceData as Record<string, unknown> | undefined;
    const ctx = created?.incomingContext as { observedParticipantId?: string; sourceParticipantId?: string } | undefined;
    assert.ok(ctx?.observedParticipantId, 'incomingContext.observedParticipantId marks a compliance-recording call');
    assert.equal(ctx?.sourceParticipantId, ctx?.observedParticipantId, 'the caller is the one recorded');

    await step(5_000 - EPSILON);
    assert.equal((await s.ck.store.get(id))?.state, 'incoming', 'still ringing just before 5 s');
    await step(2 * EPSILON);
    assert.equal((await s.ck.store.get(id))?.state, 'terminated');
    assert.deepEqual(bot.statesOf(id), ['created/incoming', ...ENDED]);
    assert.deepEqual([resultOf(id)?.code, resultOf(id)?.subcode], [408, 10057]);
    const late = await answer(id);
    assert.equal(late.status, 404);
    assert.equal(((await late.json()) as GraphErrorBody).error.code, '8522');
  });

  test('answered at 4.9 s it is established, and the recorded participant is the caller in the roster', async () => {
    const { id } = await ring({ policyBasedRecording: true });
    await step(4_900);
    assert.equal((await answer(id)).status, 202);
    await step(s.ck.config.establishDelayMs);
    assert.equal((await s.ck.store.get(id))?.state, 'established');
    assert.deepEqual(bot.statesOf(id), ['created/incoming', 'updated/establishing', 'updated/established']);
    const call = (await (await s.graph(`/v1.0/communications/calls/${id}`)).json()) as {
      incomingContext?: { observedParticipantId?: string };
    };
    const roster = (await (await s.graph(`/v1.0/communications/calls/${id}/participants`)).json()) as {
      value: { id: string; info: { identity: { user?: { displayName?: string } } } }[];
    };
    const observed = roster.value.find((p) => p.id === call.incomingContext?.observedParticipantId);
    assert.equal(observed?.info.identity.user?.displayName, 'Caller');
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE' })).status, 204);
  });

  test('a normal incoming call still gets 15 s: ringing at 5 s + epsilon, ended at 15 s', async () => {
    const ringAt = s.clock.now();
    const { id, answerByDateTime } = await ring();
    assert.equal(Date.parse(answerByDateTime), ringAt + 15_000);
    await step(5_000 + EPSILON);
    assert.equal((await s.ck.store.get(id))?.state, 'incoming');
    await s.ck.notifier.flush();
    const created = bot.received[0]?.body.value[0]?.resourceData as Record<string, unknown> | undefined;
    assert.equal(created?.incomingContext, undefined, 'no incomingContext: not a compliance-recording call');
    await step(10_000 - 2 * EPSILON);
    assert.equal((await s.ck.store.get(id))?.state, 'incoming');
    await step(EPSILON);
    assert.deepEqual(bot.statesOf(id), ['created/incoming', ...ENDED]);
    assert.deepEqual([resultOf(id)?.code, resultOf(id)?.subcode], [408, 10057]);
  });

  test('policyBasedRecording must be a boolean (400 naming it)', async () => {
    const res = await fetch(`${s.base}/_callkeeper/incoming-calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ appId: DEFAULT_APP.clientId, callbackUri: bot.url, policyBasedRecording: 'yes' }),
    });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as GraphErrorBody).error.message, /policyBasedRecording/);
  });
});
