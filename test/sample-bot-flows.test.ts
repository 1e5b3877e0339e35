import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { callBody, startServer, type TestServer } from './helpers.js';
import { type Notification, SampleBot } from './sample-bot.js';

/**
 * The flows of three of Microsoft's sample bots (microsoftgraph/microsoft-graph-comms-samples),
 * each driven over real HTTP: callkeeper notifies a loopback bot, which validates the token and
 * acts on what it is told, as the samples do.
 */
describe('sample bot flows end to end', () => {
  let s: TestServer;
  let bot: SampleBot;
  before(async () => {
    s = await startServer();
    bot = await new SampleBot(s.base, DEFAULT_APP.clientId, () => s.clock.now()).start();
  });
  after(async () => {
    await bot.stop();
    await s.close();
  });

  const graph = async (path: string, method: string, body?: unknown) => {
    const res = await s.graph(`/v1.0/communications/calls${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
    return res.status === 200 || res.status === 201 ? ((await res.json()) as Record<string, unknown>) : {};
  };
  const control = async (path: string, body: unknown = {}) => {
    const res = await fetch(`${s.base}/_callkeeper${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`control ${path} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  /** Delivers what is due; then, if nothing was, lets `ms` of virtual time pass. */
  const pump = (ms: number) => async () => {
    await s.ck.notifier.flush();
    await s.advance(ms);
    await s.ck.notifier.flush();
  };
  const callOf = (n: Notification) => n.resourceUrl.split('/')[3] ?? '';
  const data = (n: Notification) => n.resourceData as Record<string, unknown>;
  const isCall = (n: Notification) => n.resourceUrl.split('/').length === 4;
  const PROMPT = { '@odata.type': '#microsoft.graph.mediaPrompt', mediaInfo: { uri: 'https://bot.contoso.com/audio/reminder.wav' } };

  test('reminder bot: create a call, wait for its media, play the reminder, hang up when it has played', async () => {
    let hungUp = false;
    let promptId = '';
    bot.on(async (n) => {
      const d = data(n);
      // The samples act once the media is up (mediaState.audio active), where Graph reports it.
      const mediaUp = d.state === 'established' && (d.mediaState === undefined || (d.mediaState as { audio?: string }).audio === 'active');
      if (isCall(n) && mediaUp && !promptId) {
        promptId = String((await graph(`/${callOf(n)}/playPrompt`, 'POST', { clientContext: 'reminder', prompts: [PROMPT] })).id);
      }
      if (n.resourceUrl.endsWith(`/operations/${promptId}`) && d.status === 'completed' && d.clientContext === 'reminder') {
        await graph(`/${callOf(n)}`, 'DELETE');
        hungUp = true;
      }
    });
    const id = String((await graph('', 'POST', callBody({ callbackUri: bot.url }))).id);
    await bot.until(() => hungUp, pump(500), 'the prompt completing');
    await bot.until(() => bot.timeline(id).includes('deleted/terminated'), pump(0), 'the call ending');
    assert.deepEqual(bot.timeline(id), [
      'updated/establishing',
      'updated/established',
      'roster: bot, 8d4d8ca3-0000-4000-8000-000000000001',
      'playPromptOperation completed',
      'updated/terminating',
      'deleted/terminated',
    ]);
    assert.equal(bot.rejected, 0);
  });

  test('IVR bot: answer an incoming call, subscribe to tones, hear "1", play the menu, transfer to an agent', async () => {
    let subscribed = false;
    let transferred = false;
    let promptId = '';
    bot.on(async (n) => {
      const d = data(n);
      const id = callOf(n);
      if (isCall(n) && n.changeType === 'created' && d.state === 'incoming') {
        await graph(`/${id}/answer`, 'POST', {
          callbackUri: bot.url,
          mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
          acceptedModalities: ['audio'],
        });
      }
      if (isCall(n) && d.state === 'established' && !d.toneInfo && !subscribed) {
        await graph(`/${id}/subscribeToTone`, 'POST', { clientContext: 'ivr' });
        subscribed = true;
      }
      const tone = d.toneInfo as { tone?: string } | undefined;
      if (tone?.tone === 'tone1') promptId = String((await graph(`/${id}/playPrompt`, 'POST', { prompts: [PROMPT] })).id);
      if (n.resourceUrl.endsWith(`/operations/${promptId}`) && d.status === 'completed') {
        await graph(`/${id}/transfer`, 'POST', {
          transferTarget: {
            '@odata.type': '#microsoft.graph.invitationParticipantInfo',
            identity: { user: { id: '550fae72-d251-43ec-868c-373732c2704f', displayName: 'Heidi Steen' } },
          },
        });
        transferred = true;
      }
    });
    const id = String((await control('/incoming-calls', { appId: DEFAULT_APP.clientId, callbackUri: bot.url })).id);
    await bot.until(() => subscribed, pump(500), 'the call established');
    // The caller presses 1 on the dial pad.
    await control(`/calls/${id}/tones`, { tones: '1' });
    await bot.until(() => transferred, pump(500), 'the menu prompt completing');
    await bot.until(() => bot.timeline(id).includes('deleted/terminated'), pump(500), 'the transfer completing');
    assert.deepEqual(bot.timeline(id), [
      'created/incoming',
      'updated/establishing',
      'updated/established',
      'roster: bot, Caller',
      'tone tone1',
      'playPromptOperation completed',
      'updated/transferring',
      'updated/transferAccepted',
      'updated/terminating',
      'deleted/terminated',
    ]);
    const end = bot.received.filter((n) => n.resourceUrl === `/communications/calls/${id}`).at(-1);
    assert.deepEqual(data(end as Notification).resultInfo, {
      '@odata.type': '#microsoft.graph.resultInfo',
      code: 0,
      subcode: 7015,
      message: 'GracefulTransferCompleted',
    });
    const tone = bot.received.find((n) => (data(n).toneInfo as { sequenceId?: number } | undefined)?.sequenceId !== undefined);
    assert.equal((data(tone as Notification).toneInfo as { sequenceId: number }).sequenceId, 1);
  });

  test('compliance-recording bot: answer within 5 s, report recording, follow people joining and leaving', async () => {
    let answeredAt = 0;
    let recording = false;
    let observed = '';
    const ringAt = s.clock.now();
    bot.on(async (n) => {
      const d = data(n);
      const id = callOf(n);
      // As the PolicyRecordingBot sample: a call without an observed participant is not a CR call.
      const ctx = d.incomingContext as { observedParticipantId?: string; sourceParticipantId?: string } | undefined;
      if (isCall(n) && n.changeType === 'created' && ctx?.observedParticipantId && ctx.observedParticipantId === ctx.sourceParticipantId) {
        observed = ctx.observedParticipantId;
        await graph(`/${id}/answer`, 'POST', {
          callbackUri: bot.url,
          mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
          acceptedModalities: ['audio'],
        });
        answeredAt = s.clock.now();
      }
      if (isCall(n) && d.state === 'established' && !recording) {
        await graph(`/${id}/updateRecordingStatus`, 'POST', { status: 'recording', clientContext: 'compliance' });
        recording = true;
      }
    });
    const rung = await control('/incoming-calls', { appId: DEFAULT_APP.clientId, callbackUri: bot.url, policyBasedRecording: true });
    const id = String(rung.id);
    assert.equal(Date.parse(String(rung.answerByDateTime)) - ringAt, 5_000, 'a policy-based recording call rings for 5 s, not 15');
    await bot.until(() => answeredAt > 0, pump(0), 'the incoming call');
    assert.ok(answeredAt - ringAt < 5_000, 'answered within the 5 s policy-recording window');
    await bot.until(() => recording, pump(500), 'the call established');
    const adele = await control(`/calls/${id}/participants`, { displayName: 'Adele Vance' });
    await control(`/calls/${id}/participants`, { identity: { user: { id: 'a1b2', displayName: 'Alex Wilber' } } });
    await control(`/calls/${id}/participants/${String(adele.id)}/mute`);
    const del = await fetch(`${s.base}/_callkeeper/calls/${id}/participants/${String(adele.id)}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    await bot.until(() => bot.timeline(id).filter((l) => l.startsWith('roster')).length >= 6, pump(0), 'the roster changes');
    assert.deepEqual(bot.timeline(id), [
      'created/incoming',
      'updated/establishing',
      'updated/established',
      'roster: bot, Caller',
      'updateRecordingStatusOperation completed',
      'roster: bot (recording), Caller',
      'roster: bot (recording), Caller, Adele Vance',
      'roster: bot (recording), Caller, Adele Vance, Alex Wilber',
      'roster: bot (recording), Caller, Adele Vance (muted), Alex Wilber',
      'roster: bot (recording), Caller, Alex Wilber',
    ]);
    const roster = (await graph(`/${id}/participants`, 'GET')) as {
      value: { id: string; info: { identity: { user?: { displayName?: string } } } }[];
    };
    assert.equal(
      roster.value.find((p) => p.id === observed)?.info.identity.user?.displayName,
      'Caller',
      'the observed participant is the caller',
    );
    assert.equal(bot.rejected, 0);
  });
});
