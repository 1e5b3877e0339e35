import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { callBody, type GraphErrorBody, OTHER_APP, startServer, type TestServer } from './helpers.js';
import { Receiver } from './receiver.js';

interface Participant {
  id: string;
  isMuted: boolean;
  isInLobby: boolean;
  info: { identity: Record<string, { id?: string; displayName?: string }>; participantId: string };
  mediaStreams: { mediaType: string; serverMuted: boolean; direction: string }[];
  recordingInfo?: { recordingStatus: string };
}

const MEETING = {
  targets: undefined,
  meetingInfo: { '@odata.type': '#microsoft.graph.organizerMeetingInfo', organizer: { user: { id: 'u1' } } },
  chatInfo: { '@odata.type': '#microsoft.graph.chatInfo', threadId: '19:meeting_x@thread.v2', messageId: '0' },
};

describe('participants: the roster of a call', () => {
  let s: TestServer;
  let bot: Receiver;
  before(async () => {
    s = await startServer();
    bot = await new Receiver().start();
  });
  after(async () => {
    await s.close();
    await bot.stop();
  });

  const control = (path: string, body?: unknown, method = body === undefined ? 'GET' : 'POST') =>
    fetch(`${s.base}/_callkeeper${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });

  /** An established call whose callback is the loopback bot. */
  async function establishedCall(overrides: Record<string, unknown> = {}): Promise<string> {
    const id = await s.createCall(callBody({ callbackUri: bot.url, ...overrides }));
    await s.advance(1_000);
    await s.ck.notifier.flush();
    return id;
  }

  const rosters = (callId: string) =>
    bot.received
      .flatMap((r) => r.body.value)
      .filter((n) => n.resourceUrl === `/communications/calls/${callId}/participants`)
      .map((n) => n.resourceData as unknown as Participant[]);

  test('an established outgoing call has the bot and its target; the roster is notified', async () => {
    const id = await establishedCall();
    const list = (await (await s.graph(`/v1.0/communications/calls/${id}/participants`)).json()) as { value: Participant[] };
    assert.equal(list.value.length, 2);
    const [me, target] = list.value;
    assert.equal(me?.info.identity.application?.id, 'ca11ca11-0000-4000-8000-00000000b075');
    assert.equal(target?.info.identity.user?.id, '8d4d8ca3-0000-4000-8000-000000000001');
    const created = (await (await s.graph(`/v1.0/communications/calls/${id}`)).json()) as { myParticipantId: string };
    assert.equal(me?.id, created.myParticipantId);
    const notified = rosters(id);
    assert.equal(notified.length, 1);
    assert.deepEqual(
      notified[0]?.map((p) => p.id),
      list.value.map((p) => p.id),
    );
    const got = await s.graph(`/v1.0/communications/calls/${id}/participants/${target?.id}`);
    assert.equal(got.status, 200);
    assert.equal(((await got.json()) as Participant).id, target?.id);
  });

  test('people join, mute, share their screen and leave through the control API; each change is a roster update', async () => {
    const id = await establishedCall(MEETING);
    const joined = await control(`/calls/${id}/participants`, { displayName: 'Adele' });
    assert.equal(joined.status, 201);
    const adele = (await joined.json()) as Participant;
    assert.equal(adele.info.identity.user?.displayName, 'Adele');
    assert.equal((await control(`/calls/${id}/participants/${adele.id}/mute`, {})).status, 200);
    assert.equal((await control(`/calls/${id}/participants/${adele.id}/startScreenSharing`, {})).status, 200);
    assert.equal((await control(`/calls/${id}/participants/${adele.id}`, undefined, 'DELETE')).status, 200);
    await s.ck.notifier.flush();
    const describe = (p: Participant) =>
      `${p.info.identity.user?.displayName ?? 'bot'}${p.isMuted ? ' muted' : ''}${p.mediaStreams.some((m) => m.mediaType === 'videoBasedScreenSharing') ? ' sharing' : ''}`;
    assert.deepEqual(
      rosters(id).map((r) => r.map(describe)),
      [['bot'], ['bot', 'Adele'], ['bot', 'Adele muted'], ['bot', 'Adele muted sharing'], ['bot']],
    );
    const gone = await s.graph(`/v1.0/communications/calls/${id}/participants/${adele.id}`);
    assert.equal(gone.status, 404);
    assert.equal(((await gone.json()) as GraphErrorBody).error.message, 'Participant not found.');
  });

  test("another app's call, and an ended call, are 404 8522", async () => {
    const id = await establishedCall();
    const other = await s.graph(`/v1.0/communications/calls/${id}/participants`, { token: await s.token(OTHER_APP) });
    assert.equal(other.status, 404);
    assert.equal(((await other.json()) as GraphErrorBody).error.code, '8522');
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE' })).status, 204);
    const ended = await s.graph(`/v1.0/communications/calls/${id}/participants`);
    assert.equal(ended.status, 404);
    assert.equal(((await ended.json()) as GraphErrorBody).error.code, '8522');
    assert.equal((await control(`/calls/${id}/participants`, { displayName: 'late' })).status, 404);
  });
});
