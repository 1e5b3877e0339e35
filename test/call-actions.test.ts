import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { callBody, type GraphErrorBody, startServer, type TestServer } from './helpers.js';
import { FIXTURES } from './paths.js';
import { Receiver } from './receiver.js';

const SPEC = `${FIXTURES}graph/CloudCommunications.v1.0.yml`;

/** As in openapi-conformance.test.ts: Graph's annotations are not part of the schemas. */
function relax(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(relax);
  if (node && typeof node === 'object')
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, k === 'additionalProperties' ? true : relax(v)]));
  return node;
}
function stripOData(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripOData);
  if (node && typeof node === 'object')
    return Object.fromEntries(
      Object.entries(node)
        .filter(([k]) => !k.startsWith('@odata.'))
        .map(([k, v]) => [k, stripOData(v)]),
    );
  return node;
}

interface Op {
  '@odata.type': string;
  id: string;
  status: string;
  clientContext: string | null;
  resultInfo?: { code: number; subcode: number };
  participants?: unknown[];
}
interface Participant {
  id: string;
  isMuted: boolean;
  info: { identity: Record<string, { id?: string; displayName?: string }> };
  mediaStreams: { mediaType: string; serverMuted: boolean }[];
  recordingInfo?: { recordingStatus: string };
}

const MEETING = {
  targets: undefined,
  meetingInfo: { '@odata.type': '#microsoft.graph.organizerMeetingInfo', organizer: { user: { id: 'u1' } } },
  chatInfo: { '@odata.type': '#microsoft.graph.chatInfo', threadId: '19:meeting_x@thread.v2', messageId: '0' },
};

describe('call actions: mute, unmute, recording status, screen sharing, invite, transfer, participant mute and removal', () => {
  let s: TestServer;
  let bot: Receiver;
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const schemas: Record<string, ValidateFunction> = {};
  before(async () => {
    const spec = parse(readFileSync(SPEC, 'utf8')) as { components: unknown };
    ajv.addSchema({ $id: 'graph', components: relax(spec.components) });
    s = await startServer();
    bot = await new Receiver().start();
  });
  after(async () => {
    await s.close();
    await bot.stop();
  });

  /** Checks a body against Graph's OpenAPI schema of that type. */
  const valid = (type: string, data: unknown) => {
    schemas[type] ??= ajv.compile({ $ref: `graph#/components/schemas/microsoft.graph.${type}` });
    const v = schemas[type];
    assert.ok(v(stripOData(data)), `${type}: ${JSON.stringify(v.errors)}`);
  };

  const post = (callId: string, action: string, body?: unknown) =>
    s.graph(`/v1.0/communications/calls/${callId}/${action}`, {
      method: 'POST',
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
  const json = async <T>(res: Response) => (await res.json()) as T;
  const errorOf = async (res: Response) => ((await res.json()) as GraphErrorBody).error;
  async function establishedCall(overrides: Record<string, unknown> = {}): Promise<string> {
    const id = await s.createCall(callBody({ callbackUri: bot.url, ...overrides }));
    await s.advance(1_000);
    return id;
  }
  const roster = async (id: string) =>
    (await json<{ value: Participant[] }>(await s.graph(`/v1.0/communications/calls/${id}/participants`))).value;
  const notified = async (id: string, suffix: string) => {
    await s.ck.notifier.flush();
    return bot.received.flatMap((r) => r.body.value).filter((n) => n.resourceUrl === `/communications/calls/${id}${suffix}`);
  };

  test('mute and unmute: the bot server-mutes itself; 200 + Location, the roster shows it; responses are valid', async () => {
    const id = await establishedCall();
    const res = await post(id, 'mute', { clientContext: 'm' });
    assert.equal(res.status, 200);
    const op = await json<Op>(res);
    valid('muteParticipantOperation', op);
    assert.equal(op['@odata.type'], '#microsoft.graph.muteParticipantOperation');
    assert.equal(op.status, 'Completed');
    assert.match(res.headers.get('location') ?? '', new RegExp(`/communications/calls/${id}/operations/${op.id}$`));
    const [me] = await roster(id);
    assert.equal(me?.isMuted, true);
    assert.equal(me?.mediaStreams[0]?.serverMuted, true);
    const un = await post(id, 'unmute', { clientContext: 'u' });
    valid('unmuteParticipantOperation', await json(un));
    assert.equal((await roster(id))[0]?.isMuted, false);
    const rosters = await notified(id, '/participants');
    assert.deepEqual(
      rosters.map((n) => (n.resourceData as unknown as Participant[])[0]?.isMuted),
      [false, true, false],
    );
    const done = await notified(id, `/operations/${op.id}`);
    assert.equal(done[0]?.resourceData.status, 'completed');
    assert.equal(done[0]?.resourceData.clientContext, 'm');
    assert.equal((await post(id, 'mute', { clientContext: 7 })).status, 400);
    assert.equal((await post(id, 'mute', { extra: 1 })).status, 400);
  });

  test('updateRecordingStatus: the bot reports recording; validated; the roster carries its recordingInfo', async () => {
    const id = await establishedCall();
    const res = await post(id, 'updateRecordingStatus', { status: 'recording', clientContext: 'rec' });
    assert.equal(res.status, 200);
    const op = await json<Op>(res);
    valid('updateRecordingStatusOperation', op);
    assert.equal((await roster(id))[0]?.recordingInfo?.recordingStatus, 'recording');
    for (const [body, message] of [
      [{}, /'status' is required/],
      [{ status: 'taping' }, /must be one of/],
      [{ status: 'recording', clientContext: 'x'.repeat(300) }, /maximum of 256/],
    ] as const) {
      const bad = await post(id, 'updateRecordingStatus', body);
      assert.equal(bad.status, 400);
      assert.match((await errorOf(bad)).message, message);
    }
    await post(id, 'updateRecordingStatus', { status: 'notRecording' });
    assert.equal((await roster(id))[0]?.recordingInfo?.recordingStatus, 'notRecording');
  });

  test('subscribeToTone: completed at once; tones reach the bot as toneInfo with rising sequenceIds; none before subscribing', async () => {
    const id = await establishedCall();
    const control = (tones: unknown) =>
      fetch(`${s.base}/_callkeeper/calls/${id}/tones`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tones }),
      });
    const before = await json<{ notified: number }>(await control('9'));
    assert.equal(before.notified, 0);
    const res = await post(id, 'subscribeToTone', { clientContext: 'dtmf' });
    assert.equal(res.status, 200);
    const op = await json<Op>(res);
    valid('subscribeToToneOperation', op);
    assert.equal(op.status, 'Completed');
    assert.equal((await json<{ notified: number }>(await control('1*#'))).notified, 3);
    assert.equal((await control('x')).status, 400);
    const tones = (await notified(id, '')).map((n) => n.resourceData.toneInfo).filter(Boolean);
    assert.deepEqual(tones, [
      { '@odata.type': '#microsoft.graph.toneInfo', sequenceId: 1, tone: 'tone1' },
      { '@odata.type': '#microsoft.graph.toneInfo', sequenceId: 2, tone: 'star' },
      { '@odata.type': '#microsoft.graph.toneInfo', sequenceId: 3, tone: 'pound' },
    ]);
  });

  test('changeScreenSharingRole: 204, the bot shows a screen-sharing stream as sharer; role is validated', async () => {
    const id = await establishedCall();
    const res = await post(id, 'changeScreenSharingRole', { role: 'sharer' });
    assert.equal(res.status, 204);
    assert.ok((await roster(id))[0]?.mediaStreams.some((m) => m.mediaType === 'videoBasedScreenSharing'));
    assert.equal((await post(id, 'changeScreenSharingRole', { role: 'viewer' })).status, 204);
    assert.ok(!(await roster(id))[0]?.mediaStreams.some((m) => m.mediaType === 'videoBasedScreenSharing'));
    const bad = await post(id, 'changeScreenSharingRole', { role: 'presenter' });
    assert.equal(bad.status, 400);
    assert.match((await errorOf(bad)).message, /'role' is required: viewer or sharer/);
  });

  test('invite: 200 + Location + a running inviteParticipantsOperation; the invitee joins and the operation completes', async () => {
    const id = await establishedCall(MEETING);
    const res = await post(id, 'participants/invite', {
      clientContext: 'inv',
      participants: [
        { '@odata.type': '#microsoft.graph.invitationParticipantInfo', identity: { user: { id: 'u2', displayName: 'Megan' } } },
      ],
    });
    assert.equal(res.status, 200);
    const op = await json<Op>(res);
    valid('inviteParticipantsOperation', op);
    assert.equal(op.status, 'Running');
    assert.equal(op.participants?.length, 1);
    assert.ok(res.headers.get('location')?.endsWith(`/operations/${op.id}`));
    assert.equal((await roster(id)).length, 1);
    await s.advance(2_000);
    const people = await roster(id);
    assert.deepEqual(
      people.map((p) => p.info.identity.user?.displayName ?? 'bot'),
      ['bot', 'Megan'],
    );
    for (const p of people) valid('participant', p);
    const done = await notified(id, `/operations/${op.id}`);
    assert.equal(done[0]?.resourceData.status, 'completed');
    assert.equal(done[0]?.resourceData.clientContext, 'inv');
    const got = await json<Op>(await s.graph(`/v1.0/communications/calls/${id}/operations/${op.id}`));
    valid('inviteParticipantsOperation', got);
    assert.equal(got.status, 'Completed');
    for (const [body, message] of [
      [{}, /'participants' is required/],
      [{ participants: [{}] }, /identity' is required/],
      [{ participants: Array(6).fill({ identity: { user: { id: 'x' } } }) }, /at most 5/],
    ] as const) {
      const bad = await post(id, 'participants/invite', body);
      assert.equal(bad.status, 400);
      assert.match((await errorOf(bad)).message, message);
    }
  });

  test('participant mute and removal: the bot mutes someone, then removes them; 404 for unknown ones; the bot cannot remove itself', async () => {
    const id = await establishedCall();
    const [me, other] = await roster(id);
    const res = await post(id, `participants/${other?.id}/mute`, { clientContext: 'pm' });
    assert.equal(res.status, 200);
    valid('muteParticipantOperation', await json(res));
    const muted = await json<Participant>(await s.graph(`/v1.0/communications/calls/${id}/participants/${other?.id}`));
    valid('participant', muted);
    assert.equal(muted.isMuted, true);
    assert.equal(muted.mediaStreams[0]?.serverMuted, true);
    assert.equal((await post(id, 'participants/nobody/mute', {})).status, 404);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}/participants/${me?.id}`, { method: 'DELETE' })).status, 400);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}/participants/${other?.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await roster(id)).length, 1);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}/participants/${other?.id}`, { method: 'DELETE' })).status, 404);
  });

  test('transfer: 202; transferring, then transferAccepted, then terminated 0/7015; validated; not twice', async () => {
    const id = await establishedCall();
    const target = { transferTarget: { endpointType: 'default', identity: { user: { id: 'u3', displayName: 'Heidi' } } } };
    for (const body of [{}, { transferTarget: {} }, { transferTarget: { identity: {} } }])
      assert.equal((await post(id, 'transfer', body)).status, 400);
    const res = await post(id, 'transfer', target);
    assert.equal(res.status, 202);
    assert.equal(await res.text(), '');
    const state = async () => (await json<{ state: string }>(await s.graph(`/v1.0/communications/calls/${id}`))).state;
    assert.equal(await state(), 'transferring');
    const again = await post(id, 'transfer', target);
    assert.equal(again.status, 400);
    assert.match((await errorOf(again)).message, /state 'transferring'/);
    await s.advance(1_000);
    assert.equal(await state(), 'transferAccepted');
    await s.advance(1_000);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`)).status, 404);
    await s.ck.notifier.flush();
    assert.deepEqual(bot.statesOf(id).slice(-4), [
      'updated/transferring',
      'updated/transferAccepted',
      'updated/terminating',
      'deleted/terminated',
    ]);
  });

  test('sendDtmfTones: 200 + Location + a running sendDtmfTonesOperation that completes once every tone has sounded', async () => {
    const id = await establishedCall();
    const res = await post(id, 'sendDtmfTones', { tones: ['tone1', 'tone2', 'pound'], delayBetweenTonesMs: 1000, clientContext: 'dtmf' });
    assert.equal(res.status, 200);
    const op = await json<Op>(res);
    valid('sendDtmfTonesOperation', op);
    assert.equal(op.status, 'Running');
    assert.ok(res.headers.get('location')?.endsWith(`/operations/${op.id}`));
    await s.advance(2_299); // 3 tones of 100 ms, 2 pauses of 1 s
    assert.equal((await notified(id, `/operations/${op.id}`)).length, 0);
    await s.advance(1);
    const [done] = await notified(id, `/operations/${op.id}`);
    assert.equal(done?.resourceData.status, 'completed');
    assert.equal(done?.resourceData.completionReason, 'completedSuccessfully');
    assert.equal(done?.resourceData.clientContext, 'dtmf');
    for (const body of [{}, { tones: [] }, { tones: ['1'] }, { tones: ['tone1'], delayBetweenTonesMs: -1 }]) {
      const bad = await post(id, 'sendDtmfTones', body);
      assert.equal(bad.status, 400, JSON.stringify(body));
    }
  });

  test('$count of participants and operations: a plain-text number', async () => {
    const id = await establishedCall();
    await post(id, 'mute', {});
    const participants = await s.graph(`/v1.0/communications/calls/${id}/participants/$count`);
    assert.equal(participants.status, 200);
    assert.equal(participants.headers.get('content-type')?.split(';')[0], 'text/plain');
    assert.equal(await participants.text(), '2');
    assert.equal(await (await s.graph(`/v1.0/communications/calls/${id}/operations/$count`)).text(), '1');
  });

  test('GET .../operations lists them; every operation response validates', async () => {
    const id = await establishedCall();
    const play = await post(id, 'playPrompt', { prompts: [{ mediaInfo: { uri: 'https://x.example/a.wav' } }] });
    valid('playPromptOperation', await json(play));
    const rec = await post(id, 'recordResponse', {});
    valid('recordOperation', await json(rec));
    const cancel = await post(id, 'cancelMediaProcessing', {});
    valid('cancelMediaProcessingOperation', await json(cancel));
    const list = await json<{ value: Op[] }>(await s.graph(`/v1.0/communications/calls/${id}/operations`));
    assert.deepEqual(
      list.value.map((o) => o['@odata.type']),
      ['#microsoft.graph.playPromptOperation', '#microsoft.graph.recordOperation', '#microsoft.graph.cancelMediaProcessingOperation'],
    );
    for (const o of list.value) valid('commsOperation', o);
    assert.deepEqual(
      list.value.map((o) => o.status),
      ['Failed', 'Failed', 'Completed'],
    );
  });
});
