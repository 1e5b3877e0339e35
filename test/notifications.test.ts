import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { ManualClock } from '../src/clock/clock.js';
import { DEFAULT_DISPATCHER } from '../src/notifications/dispatcher.js';
import type { DeliveryAttempt, DeliveryOutcome, FinishResult, OutboxEntry } from '../src/store/outbox-port.js';
import { SqliteCallStore } from '../src/store/sqlite-store.js';
import { callBody, fetchToken, type GraphErrorBody, MINUTE, startServer, type TestServer } from './helpers.js';
import { Receiver } from './receiver.js';

const ESTABLISHED = ['updated/establishing', 'updated/established'];
const ENDED = ['updated/terminating', 'deleted/terminated'];

interface DeliveryView {
  seq: number;
  status: string;
  changeType: string;
  state: string;
  attempts: { statusCode: number | null; error: string | null; latencyMs: number; outcome: string }[];
}

describe('notifications to the bot', () => {
  let s: TestServer;
  let bot: Receiver;
  before(async () => {
    s = await startServer({
      notifications: { ...DEFAULT_DISPATCHER, requestTimeoutMs: 2_000, retry: { baseMs: 1_000, maxMs: 60_000, retryForMs: 30 * MINUTE } },
    });
  });
  after(() => s.close());
  beforeEach(async () => {
    bot = await new Receiver().start();
  });
  afterEach(() => bot.stop());

  /** Moves virtual time and lets due transitions and deliveries happen. */
  const step = async (ms: number) => {
    await s.advance(ms);
    await s.ck.notifier.flush();
  };
  const flush = () => s.ck.notifier.flush();
  const lastResult = (callId: string) => {
    const terminated = bot.received
      .flatMap((r) => r.body.value)
      .find((n) => n.resourceUrl === `/communications/calls/${callId}` && n.resourceData.state === 'terminated');
    return terminated?.resourceData.resultInfo as { code: number; subcode: number; message: string } | undefined;
  };
  const deliveries = async (callId: string) =>
    ((await (await fetch(`${s.base}/_callkeeper/notifications?callId=${callId}`)).json()) as { value: DeliveryView[] }).value;

  test('an outgoing call the bot hangs up: establishing, established, terminating, terminated', async () => {
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await flush();
    await step(1_000);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE' })).status, 204);
    await flush();
    assert.deepEqual(bot.statesOf(id), [...ESTABLISHED, ...ENDED]);
    assert.deepEqual(lastResult(id), {
      '@odata.type': '#microsoft.graph.resultInfo',
      code: 200,
      subcode: 7000,
      message: 'The conversation has ended by bot.',
    });
    const first = bot.received[0]?.body;
    assert.equal(first?.['@odata.type'], '#microsoft.graph.commsNotifications');
    const n = first?.value[0];
    assert.equal(n?.['@odata.type'], '#microsoft.graph.commsNotification');
    assert.equal(n?.resourceUrl, `/communications/calls/${id}`);
    assert.equal(n?.resource, `/app/calls/${id}`);
    assert.equal(n?.resourceData['@odata.type'], '#microsoft.graph.call');
    assert.equal(bot.received[0]?.headers['content-type'], 'application/json');
  });

  test('a call left without keepAlive: ... terminating, terminated 408/8537, with no request arriving', async () => {
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await step(45 * MINUTE);
    assert.deepEqual(bot.statesOf(id), [...ESTABLISHED, ...ENDED]);
    assert.deepEqual(lastResult(id), {
      '@odata.type': '#microsoft.graph.resultInfo',
      code: 408,
      subcode: 8537,
      message: 'Keep Alive timeout, cleaned up inactive call.',
    });
  });

  test('the other party hangs up (POST /_callkeeper/calls/{id}/hangup): terminated 200/18503', async () => {
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await step(1_000);
    const res = await fetch(`${s.base}/_callkeeper/calls/${id}/hangup`, { method: 'POST' });
    assert.equal(res.status, 200);
    await flush();
    assert.deepEqual(bot.statesOf(id), [...ESTABLISHED, ...ENDED]);
    assert.equal(lastResult(id)?.subcode, 18503);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' })).status, 404);
  });

  const ring = async (body: Record<string, unknown> = {}) => {
    const res = await fetch(`${s.base}/_callkeeper/incoming-calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ appId: DEFAULT_APP.clientId, callbackUri: bot.url, ...body }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    return ((await res.json()) as { id: string }).id;
  };
  const answerBody = () => ({
    callbackUri: bot.url,
    mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
    acceptedModalities: ['audio'],
  });
  const act = (id: string, action: string, body: unknown) =>
    s.graph(`/v1.0/communications/calls/${id}/${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  test('an incoming call the bot answers: created/incoming, then it lives and ends like an outgoing call', async () => {
    const id = await ring();
    await flush();
    assert.deepEqual(bot.statesOf(id), ['created/incoming']);
    const created = bot.received[0]?.body.value[0]?.resourceData;
    assert.equal(created?.direction, 'incoming');
    assert.ok(created?.source, 'the caller is named');
    const res = await act(id, 'answer', answerBody());
    assert.equal(res.status, 202);
    await step(1_000);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' })).status, 200);
    await step(45 * MINUTE);
    assert.deepEqual(bot.statesOf(id), ['created/incoming', ...ESTABLISHED, ...ENDED]);
    assert.equal(lastResult(id)?.subcode, 8537);
  });

  test('an incoming call unanswered for 15 seconds ends (408/10057); answering then is 404', async () => {
    const id = await ring();
    await step(14_999);
    assert.equal((await s.ck.store.get(id))?.state, 'incoming');
    await step(1);
    assert.deepEqual(bot.statesOf(id), ['created/incoming', ...ENDED]);
    assert.deepEqual(lastResult(id), {
      '@odata.type': '#microsoft.graph.resultInfo',
      code: 408,
      subcode: 10057,
      message: 'Call timed out due to no signaling from callee endpoints.',
    });
    assert.equal((await act(id, 'answer', answerBody())).status, 404);
  });

  test('reject (busy) and redirect answer 202 and end the call; they need an incoming call', async () => {
    const rejected = await ring();
    assert.equal((await act(rejected, 'reject', { reason: 'busy' })).status, 202);
    const redirected = await ring();
    const badRedirect = await act(redirected, 'redirect', {
      targets: Array.from({ length: 26 }, (_, i) => ({ identity: { user: { id: `u${i}` } } })),
    });
    assert.equal(badRedirect.status, 400);
    assert.equal(
      (await act(redirected, 'microsoft.graph.redirect', { targets: [{ identity: { user: { id: 'u1' } } }], timeout: 30 })).status,
      202,
    );
    await flush();
    assert.deepEqual(bot.statesOf(rejected), ['created/incoming', ...ENDED]);
    assert.equal(lastResult(rejected)?.code, 486);
    assert.equal(lastResult(redirected)?.code, 302);
    const badReason = await act(await ring(), 'reject', { reason: 'sleepy' });
    assert.equal(badReason.status, 400);
    const outgoing = await s.createCall(callBody({ callbackUri: bot.url }));
    const notIncoming = await act(outgoing, 'answer', answerBody());
    assert.equal(notIncoming.status, 400);
    assert.match(((await notIncoming.json()) as GraphErrorBody).error.message, /only an incoming call/);
  });

  test('the notification token validates against the published OpenID keys; a tampered one does not', async () => {
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await flush();
    const auth = String(bot.received.find((r) => r.body.value[0]?.resourceUrl.endsWith(id))?.headers.authorization);
    assert.match(auth, /^Bearer /);
    const token = auth.slice(7);
    const config = (await (await fetch(`${s.base}/botframework/v1/.well-known/openidconfiguration`)).json()) as {
      issuer: string;
      jwks_uri: string;
    };
    const jwks = createRemoteJWKSet(new URL(config.jwks_uri));
    const { payload } = await jwtVerify(token, jwks, {
      issuer: config.issuer,
      audience: DEFAULT_APP.clientId,
      currentDate: new Date(s.clock.now()),
    });
    assert.equal(payload.iss, 'https://api.botframework.com');
    assert.equal(payload.tid, DEFAULT_APP.tenantId);
    const [h, , sig] = token.split('.') as [string, string, string];
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, aud: 'someone-else' })).toString('base64url')}.${sig}`;
    await assert.rejects(jwtVerify(tampered, jwks, { issuer: config.issuer, currentDate: new Date(s.clock.now()) }));
    await assert.rejects(jwtVerify(token, jwks, { issuer: config.issuer, audience: 'another-bot', currentDate: new Date(s.clock.now()) }));
  });

  test('a receiver down for 10 virtual minutes receives every notification, once and in order, when back', async () => {
    // Down on a port no other file's server can be handed meanwhile (Receiver.startOnQuietPort).
    await bot.stop();
    const { port } = await bot.startOnQuietPort();
    await bot.stop();
    const id = await s.createCall(callBody({ callbackUri: `http://127.0.0.1:${port}/api/calls` }));
    await step(1_000);
    await s.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE' });
    for (let t = 0; t < 10 * MINUTE; t += 30_000) await step(30_000);
    const failing = await deliveries(id);
    // Three call facts (created, established, ended), and the roster the call announced once established.
    assert.equal(failing.length, 4);
    assert.ok(failing.every((d) => d.status === 'pending'));
    const head = failing.find((d) => d.state === 'establishing');
    assert.ok(head && head.attempts.length >= 5, 'retried while down');
    assert.ok(head.attempts.every((a) => a.statusCode === null && a.error && a.outcome === 'retry'));
    // The others wait their turn behind the first: order per call.
    assert.ok(failing.filter((d) => d.state !== 'establishing').every((d) => d.attempts.length === 0));

    bot = await new Receiver().start(port);
    for (let t = 0; t < 10 * MINUTE && bot.statesOf(id).length < 4; t += 30_000) await step(30_000);
    assert.deepEqual(bot.statesOf(id), [...ESTABLISHED, ...ENDED]);
    const done = await deliveries(id);
    assert.ok(done.every((d) => d.status === 'delivered'));
    assert.ok(done.every((d) => d.attempts.at(-1)?.statusCode === 202));
  });

  test('a notification still failing when its retry window is spent is dead-lettered and visible', async () => {
    bot.behaviour = 503;
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    for (let t = 0; t <= 31 * MINUTE; t += MINUTE) await step(MINUTE);
    const dead = ((await (await fetch(`${s.base}/_callkeeper/notifications?status=dead&callId=${id}`)).json()) as { value: DeliveryView[] })
      .value;
    assert.ok(dead.length >= 1);
    assert.equal(dead.at(-1)?.state, 'establishing');
    assert.equal(dead.at(-1)?.attempts.at(-1)?.statusCode, 503);
    assert.equal(dead.at(-1)?.attempts.at(-1)?.outcome, 'dead');
  });

  test('a bot refusing a notification (403) is not retried', async () => {
    bot.behaviour = 403;
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await flush();
    const [d] = await deliveries(id);
    assert.equal(d?.status, 'dead');
    assert.equal(d?.attempts.length, 1);
  });

  test('a hanging bot does not hold up deliveries to other bots', async () => {
    // A server of its own whose request timeout (wall clock) outlasts any stall of a loaded
    // machine: with the suite's 2 s, the hanging request could time out before the 20 others
    // were delivered, and the test would no longer show them passing a request still open.
    const hs = await startServer({ notifications: { ...DEFAULT_DISPATCHER, requestTimeoutMs: 120_000 } });
    const other = await new Receiver().start();
    try {
      bot.behaviour = 'hang';
      const stuck = await hs.createCall(callBody({ callbackUri: bot.url }));
      void hs.ck.notifier.pump();
      const fine: string[] = [];
      for (let i = 0; i < 20; i++) fine.push(await hs.createCall(callBody({ callbackUri: other.url })));
      // Wait (bounded, generous) only for the healthy bot; the hanging request is still open meanwhile.
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && fine.some((id) => other.statesOf(id).length === 0)) {
        await hs.ck.notifier.pump();
        await new Promise((r) => setTimeout(r, 10));
      }
      for (const id of fine) assert.deepEqual(other.statesOf(id), ['updated/establishing']);
      assert.deepEqual(bot.statesOf(stuck), []);
      const [d] = ((await (await fetch(`${hs.base}/_callkeeper/notifications?callId=${stuck}`)).json()) as { value: DeliveryView[] }).value;
      assert.equal(d?.attempts.length, 0, 'the hanging delivery is still in flight');
    } finally {
      await bot.stop();
      await other.stop();
      await hs.ck.notifier.idle();
      await hs.close();
    }
  });
});

/** The real store, counting what the dispatcher holds: claimed and not yet finished. */
class CountingStore extends SqliteCallStore {
  claimed = 0;
  finished = 0;
  mostHeld = 0;
  claims: number[] = [];
  override async claimDeliveries(now: number, limit: number, leaseUntil: number): Promise<OutboxEntry[]> {
    const got = await super.claimDeliveries(now, limit, leaseUntil);
    this.claimed += got.length;
    this.claims.push(got.length);
    this.mostHeld = Math.max(this.mostHeld, this.claimed - this.finished);
    return got;
  }
  override async finishDelivery(seq: number, lease: number, a: DeliveryAttempt, o: DeliveryOutcome): Promise<FinishResult> {
    const r = await super.finishDelivery(seq, lease, a, o);
    this.finished++;
    return r;
  }
}

describe('claiming notifications', () => {
  test('a backlog for one bot is claimed only as free delivery slots can take it, each entry once', async () => {
    const bot = await new Receiver().start();
    const clock = new ManualClock();
    const store = new CountingStore();
    const backlog = 150;
    for (let i = 0; i < backlog; i++) {
      const n = (i + 1).toString(16).padStart(12, '0');
      await store.create({
        id: `ba5c0000-0000-4000-8000-${n}`,
        owner: { appId: DEFAULT_APP.clientId, tenantId: DEFAULT_APP.tenantId },
        state: 'establishing',
        direction: 'outgoing',
        createdAt: clock.now(),
        deadline: clock.now() + 60 * MINUTE,
        establishAt: null,
        resource: { callbackUri: bot.url },
      });
    }
    const concurrency = 8;
    const s = await startServer({ clock, store, notifications: { ...DEFAULT_DISPATCHER, concurrency, perHostConcurrency: 2 } });
    try {
      await s.ck.notifier.flush();
      assert.equal(bot.received.length, backlog, 'every notification delivered');
      assert.equal(store.claimed, backlog, 'no entry claimed twice (none claimed without room and left to its lease)');
      // Bounded by the slots, not by the backlog (claims sized to the slots and the host's line;
      // a kick for new work may take a line's worth more).
      assert.ok(store.mostHeld <= 2 * concurrency, `at most ${2 * concurrency} held at once, held ${store.mostHeld}`);
      assert.ok(store.claims.length > backlog / concurrency, 'claimed a few at a time as deliveries finished');
    } finally {
      await s.close();
      await bot.stop();
    }
  });
});

describe('due work before deliveries', () => {
  test('while due work runs nothing new is claimed; once it is done, what it queued is delivered', async () => {
    const bot = await new Receiver().start();
    const s = await startServer();
    try {
      let id = '';
      await s.ck.notifier.holdWhile(async () => {
        id = await s.createCall(callBody({ callbackUri: bot.url }));
        await s.ck.notifier.pump();
        // Several turns of the event loop: a claim, a delivery and its answer would fit.
        for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
        assert.equal(bot.received.length, 0, 'held: nothing delivered');
      });
      await s.ck.notifier.flush();
      assert.deepEqual(bot.statesOf(id), ['updated/establishing']);
    } finally {
      await s.close();
      await bot.stop();
    }
  });
});

describe('notifications survive a crash', () => {
  test('kill -9 between a state change and its delivery loses no notification', async () => {
    const { spawnServe } = await import('./cli-process.js');
    const { tempDir } = await import('./helpers.js');
    const dir = tempDir();
    const bot = await new Receiver().startOnQuietPort();
    const port = bot.port;
    await bot.stop(); // down: nothing can be delivered before the kill
    try {
      const a = await spawnServe(['--data', dir.path, '--no-https', '--notify-timeout', '2s']);
      const token = await fetchToken(a.base);
      const created = await fetch(`${a.base}/v1.0/communications/calls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(callBody({ callbackUri: `http://127.0.0.1:${port}/api/calls` })),
      });
      const { id } = (await created.json()) as { id: string };
      const hungUp = await fetch(`${a.base}/v1.0/communications/calls/${id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(hungUp.status, 204);
      a.child.kill('SIGKILL');
      await a.exited;

      const back = await new Receiver().start(port);
      const b = await spawnServe(['--data', dir.path, '--no-https', '--notify-timeout', '2s']);
      try {
        // Bounded wait for the restarted server to deliver what the killed one had queued.
        for (let i = 0; i < 300 && back.statesOf(id).length < 3; i++) await new Promise((r) => setTimeout(r, 50));
        assert.deepEqual(back.statesOf(id), ['updated/establishing', ...ENDED]);
      } finally {
        b.child.kill('SIGTERM');
        await b.exited;
        await back.stop();
      }
    } finally {
      dir.remove();
    }
  });
});
