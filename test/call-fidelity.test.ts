/**
 * What the call resource and the notifications carry, as Graph's documentation shows them,
 * checked on the wire: a real loopback HTTP bot receives the notifications.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { callBody, type GraphErrorBody, startServer, type TestServer } from './helpers.js';
import { Receiver } from './receiver.js';

type Note = Receiver['received'][number]['body']['value'][number] & { callbackUri?: string };

describe('call resource and notification fields on the wire', () => {
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

  const flush = () => s.ck.notifier.flush();
  const notesOf = (id: string, receiver = bot): Note[] =>
    receiver.received.flatMap((r) => r.body.value as Note[]).filter((n) => n.resourceUrl === `/communications/calls/${id}`);
  const byState = (id: string, state: string, receiver = bot) => notesOf(id, receiver).find((n) => n.resourceData.state === state);
  const getCall = async (id: string) => (await (await s.graph(`/v1.0/communications/calls/${id}`)).json()) as Record<string, unknown>;

  test('call notifications carry resourceData.id, @odata.id and the callbackUri on each commsNotification', async () => {
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await flush();
    await s.advance(1_000);
    await flush();
    const notes = notesOf(id);
    assert.ok(notes.length >= 2, JSON.stringify(notes));
    for (const n of notes) {
      assert.equal(n.resourceData.id, id);
      assert.equal(n.resourceData['@odata.id'], `/communications/calls/${id}`);
      assert.equal(n.callbackUri, bot.url);
    }
  });

  test('mediaState: audio inactive while establishing, active once established, on the wire and on GET', async () => {
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await flush();
    assert.deepEqual((await getCall(id)).mediaState, { '@odata.type': '#microsoft.graph.callMediaState', audio: 'inactive' });
    assert.deepEqual(byState(id, 'establishing')?.resourceData.mediaState, {
      '@odata.type': '#microsoft.graph.callMediaState',
      audio: 'inactive',
    });
    await s.advance(1_000);
    await flush();
    assert.deepEqual(byState(id, 'established')?.resourceData.mediaState, {
      '@odata.type': '#microsoft.graph.callMediaState',
      audio: 'active',
    });
    assert.deepEqual((await getCall(id)).mediaState, { '@odata.type': '#microsoft.graph.callMediaState', audio: 'active' });
    // A call without audio has no audio media state.
    const video = await s.createCall(callBody({ callbackUri: bot.url, requestedModalities: ['video'] }));
    assert.equal((await getCall(video)).mediaState, undefined);
  });

  test('an incoming call notification names its targets (the bot), with id and @odata.id', async () => {
    const res = await fetch(`${s.base}/_callkeeper/incoming-calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ appId: DEFAULT_APP.clientId, callbackUri: bot.url }),
    });
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    await flush();
    const created = notesOf(id).find((n) => n.changeType === 'created');
    assert.ok(created, JSON.stringify(bot.received));
    assert.equal(created.resourceData.state, 'incoming');
    assert.equal(created.resourceData.id, id);
    assert.equal(created.resourceData['@odata.id'], `/communications/calls/${id}`);
    assert.equal(created.callbackUri, bot.url);
    const targets = created.resourceData.targets as { identity: { application: { id: string; displayName: string } } }[];
    assert.equal(targets.length, 1);
    assert.equal(targets[0]?.identity.application.id, DEFAULT_APP.clientId);
    assert.equal(targets[0]?.identity.application.displayName, DEFAULT_APP.displayName);
  });

  test('source and tenantId given by the create request are echoed (a PSTN call from an application instance)', async () => {
    const source = {
      '@odata.type': '#microsoft.graph.participantInfo',
      identity: {
        '@odata.type': '#microsoft.graph.identitySet',
        applicationInstance: {
          '@odata.type': '#microsoft.graph.identity',
          displayName: 'Calling Bot',
          id: '3d913abb-aec0-4964-8fa6-3c6850c4f278',
        },
      },
      countryCode: null,
      endpointType: null,
      region: null,
      languageId: null,
    };
    const tenantId = 'aa67bd4c-8475-432d-bd41-39f255720e0a';
    const body = callBody({
      callbackUri: bot.url,
      source,
      tenantId,
      targets: [{ '@odata.type': '#microsoft.graph.invitationParticipantInfo', identity: { phone: { id: '+12345678901' } } }],
    });
    const res = await s.graph('/v1.0/communications/calls', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 201);
    const created = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(created.source, source);
    assert.equal(created.tenantId, tenantId);
    const read = await getCall(String(created.id));
    assert.deepEqual(read.source, source);
    assert.equal(read.tenantId, tenantId);
    // Without them, the app is the source and its tenant the tenantId.
    const plain = await getCall(await s.createCall(callBody({ callbackUri: bot.url })));
    assert.equal((plain.source as { identity: { application: { id: string } } }).identity.application.id, DEFAULT_APP.clientId);
    assert.equal(plain.tenantId, DEFAULT_APP.tenantId);
    // A malformed source is a 400 naming it.
    const badSource = await s.graph('/v1.0/communications/calls', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(callBody({ source: { identity: {} } })),
    });
    assert.equal(badSource.status, 400);
    assert.match(((await badSource.json()) as GraphErrorBody).error.message, /'source\.identity'/);
  });

  test('notification requests carry Graph-shaped headers: GUID client-request-id, Scenario-Id, chain id, User-Agent', async () => {
    const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const first = await s.createCall(callBody({ callbackUri: bot.url }));
    const second = await s.createCall(callBody({ callbackUri: bot.url }));
    await s.advance(1_000);
    await flush();
    const requests = (id: string) => bot.received.filter((r) => r.body.value.some((n) => n.resourceUrl === `/communications/calls/${id}`));
    const a = requests(first);
    const b = requests(second);
    assert.equal(a.length, 2);
    assert.equal(b.length, 2);
    const ids = [...a, ...b].map((r) => String(r.headers['client-request-id']));
    for (const id of ids) assert.match(id, GUID);
    assert.equal(new Set(ids).size, 4, 'one client-request-id per notification');
    const scenario = (rs: typeof a) => [...new Set(rs.map((r) => String(r.headers['scenario-id'])))];
    assert.equal(scenario(a).length, 1, 'one Scenario-Id per call');
    assert.match(scenario(a)[0] ?? '', GUID);
    assert.notEqual(scenario(a)[0], scenario(b)[0]);
    const chainId = (await getCall(first)).callChainId;
    for (const r of a) {
      assert.equal(r.headers['x-microsoft-skype-chain-id'], chainId);
      assert.equal(r.headers['user-agent'], 'Microsoft-Skype/3.0,(Calling/1.0)');
    }
  });

  test('a retried notification repeats its client-request-id', async () => {
    bot.behaviour = 503;
    await s.createCall(callBody({ callbackUri: bot.url }));
    await flush();
    assert.equal(bot.arrivals.length, 1);
    bot.behaviour = 202;
    await s.advance(5_000);
    await flush();
    assert.ok(bot.arrivals.length >= 2);
    assert.equal(bot.arrivals[1]?.['client-request-id'], bot.arrivals[0]?.['client-request-id']);
    assert.notEqual(
      bot.arrivals.at(-1)?.['client-request-id'],
      bot.arrivals[0]?.['client-request-id'],
      'the next notification has its own',
    );
  });

  test("the other party's hang-up ends with 200/18503 and Graph's exact message", async () => {
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await s.advance(1_000);
    assert.equal((await fetch(`${s.base}/_callkeeper/calls/${id}/hangup`, { method: 'POST' })).status, 200);
    await flush();
    assert.deepEqual(byState(id, 'terminated')?.resourceData.resultInfo, {
      '@odata.type': '#microsoft.graph.resultInfo',
      code: 200,
      subcode: 18503,
      message: 'The other participant in the peer-to-peer call left the conversation.',
    });
  });

  test('joining a meeting with app-hosted media and no blob is accepted (Graph example 6); a peer-to-peer call still needs the blob', async () => {
    const meeting = callBody({
      callbackUri: bot.url,
      targets: undefined,
      mediaConfig: { '@odata.type': '#microsoft.graph.appHostedMediaConfig' },
      meetingInfo: {
        '@odata.type': '#microsoft.graph.organizerMeetingInfo',
        organizer: { '@odata.type': '#microsoft.graph.identitySet', user: { id: '5810cede-f3cc-42eb-b2c1-e9bd5d53ec96' } },
      },
      chatInfo: { '@odata.type': '#microsoft.graph.chatInfo', threadId: '19:meeting_abc@thread.v2', messageId: '0' },
    });
    delete meeting.targets;
    const joined = await s.graph('/v1.0/communications/calls', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(meeting),
    });
    assert.equal(joined.status, 201, await joined.clone().text());
    const p2p = await s.graph('/v1.0/communications/calls', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(callBody({ mediaConfig: { '@odata.type': '#microsoft.graph.appHostedMediaConfig' } })),
    });
    assert.equal(p2p.status, 400);
    assert.match(((await p2p.json()) as GraphErrorBody).error.message, /'mediaConfig\.blob' is required/);
  });
});

describe("answer without callbackUri: the app registration's default callback", () => {
  let s: TestServer;
  let ringer: Receiver;
  let webhook: Receiver;
  before(async () => {
    s = await startServer();
    ringer = await new Receiver().start();
    webhook = await new Receiver().start();
  });
  after(async () => {
    await ringer.stop();
    await webhook.stop();
    await s.close();
  });

  const answerBody = { acceptedModalities: ['audio'], mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' } };

  async function registerApp(extra: Record<string, unknown>) {
    const res = await fetch(`${s.base}/_callkeeper/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ displayName: 'webhook bot', roles: ['Calls.Initiate.All'], ...extra }),
    });
    return res;
  }
  async function ring(appId: string, callbackUri?: string) {
    const res = await fetch(`${s.base}/_callkeeper/incoming-calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ appId, ...(callbackUri ? { callbackUri } : {}) }),
    });
    return res;
  }

  test('the app rings at its registered callbackUri and an answer without one keeps notifying there', async () => {
    const reg = await registerApp({ callbackUri: webhook.url });
    assert.equal(reg.status, 201);
    const app = (await reg.json()) as { clientId: string; tenantId: string; clientSecret: string; callbackUri: string };
    assert.equal(app.callbackUri, webhook.url);
    const rung = await ring(app.clientId);
    assert.equal(rung.status, 201, await rung.clone().text());
    const { id } = (await rung.json()) as { id: string };
    const token = await s.token({ ...app, displayName: 'webhook bot', roles: ['Calls.Initiate.All'] });
    const answered = await s.graph(`/v1.0/communications/calls/${id}/answer`, {
      method: 'POST',
      token,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(answerBody),
    });
    assert.equal(answered.status, 202, await answered.clone().text());
    await s.advance(1_000);
    await s.ck.notifier.flush();
    assert.deepEqual(webhook.statesOf(id), ['created/incoming', 'updated/establishing', 'updated/established']);
    const last = webhook.received.at(-1)?.body.value[0] as { callbackUri?: string } | undefined;
    assert.equal(last?.callbackUri, webhook.url);
  });

  test('an answer naming a callbackUri moves the notifications there', async () => {
    const reg = (await (await registerApp({ callbackUri: webhook.url })).json()) as {
      clientId: string;
      tenantId: string;
      clientSecret: string;
    };
    const { id } = (await (await ring(reg.clientId)).json()) as { id: string };
    const token = await s.token({ ...reg, displayName: 'x', roles: [] });
    const answered = await s.graph(`/v1.0/communications/calls/${id}/answer`, {
      method: 'POST',
      token,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...answerBody, callbackUri: ringer.url }),
    });
    assert.equal(answered.status, 202);
    await s.ck.notifier.flush();
    assert.deepEqual(ringer.statesOf(id), ['updated/establishing']);
  });

  test('neither in the answer nor in the registration: 400 naming callbackUri, and the call still rings', async () => {
    const { id } = (await (await ring(DEFAULT_APP.clientId, ringer.url)).json()) as { id: string };
    const res = await s.graph(`/v1.0/communications/calls/${id}/answer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(answerBody),
    });
    assert.equal(res.status, 400);
    const err = (await res.json()) as GraphErrorBody;
    assert.equal(err.error.code, 'BadRequest');
    assert.match(err.error.message, /^Property 'callbackUri' is required/);
    assert.equal((await s.ck.store.get(id))?.state, 'incoming');
  });

  test('a registration with a bad callbackUri is refused; a ring with no callbackUri for an app without one is a 400', async () => {
    const bad = await registerApp({ callbackUri: 'http://example.com/api/calls' });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as GraphErrorBody).error.message, /callbackUri/);
    const noWhere = await ring(DEFAULT_APP.clientId);
    assert.equal(noWhere.status, 400);
    assert.match(((await noWhere.json()) as GraphErrorBody).error.message, /callbackUri/);
  });
});

test("a missing permission is 403 7504 with Graph's exact message", async () => {
  const s = await startServer();
  try {
    const reg = (await (
      await fetch(`${s.base}/_callkeeper/apps`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ displayName: 'no roles', roles: [] }),
      })
    ).json()) as { clientId: string; tenantId: string; clientSecret: string };
    const token = await s.token({ ...reg, displayName: 'no roles', roles: [] });
    const res = await s.graph('/v1.0/communications/calls', {
      method: 'POST',
      token,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(callBody()),
    });
    assert.equal(res.status, 403);
    const err = (await res.json()) as GraphErrorBody;
    assert.equal(err.error.code, '7504');
    assert.equal(err.error.message, 'Insufficient enterprise tenant permissions, cannot access this API.');
  } finally {
    await s.close();
  }
});
