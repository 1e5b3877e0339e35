import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock/clock.js';
import { RedisStore } from '../src/store/redis/redis-store.js';
import { callBody, startServer, type TestServer } from './helpers.js';
import { Receiver } from './receiver.js';
import { startRedis, startRedisCluster } from './redis-server.js';

interface Operation {
  id: string;
  status: string;
  clientContext: string | null;
  resultInfo?: { code: number; subcode: number };
}

interface Participant {
  id: string;
  info: { identity: Record<string, { displayName?: string }> };
}

const PROMPT = { '@odata.type': '#microsoft.graph.mediaPrompt', mediaInfo: { uri: 'https://cdn.contoso.com/beep.wav', resourceId: 'r1' } };

/**
 * Bot actions through createCallkeeper on a real redis-server (and a 3-master Redis Cluster),
 * over real HTTP: two instances on one Redis (sharing one ManualClock) act on the same call, each
 * seeing what the other did.
 */
const ON = [
  {
    name: 'a redis-server',
    start: async () => {
      const r = await startRedis();
      return { url: r.url, stop: () => r.stop() };
    },
  },
  {
    name: 'a 3-master Redis Cluster',
    start: async () => {
      const c = await startRedisCluster(3);
      return { url: `redis-cluster://${c.ports.map((p) => `127.0.0.1:${p}`).join(',')}`, stop: () => c.stop() };
    },
  },
];

for (const on of ON) {
  describe(`bot actions on ${on.name}: two instances, one call`, () => {
    let redis: { url: string; stop(): Promise<void> };
    let a: TestServer;
    let b: TestServer;
    let bot: Receiver;
    const clock = new ManualClock();
    before(async () => {
      redis = await on.start();
      const first = await RedisStore.open({ url: redis.url, shards: 4 });
      await first.flushForTests();
      a = await startServer({ store: first, clock });
      b = await startServer({ store: await RedisStore.open({ url: redis.url, shards: 4 }), clock });
      bot = await new Receiver().start();
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await bot?.stop();
      await redis?.stop();
    });

    const post = (s: TestServer, callId: string, action: string, body: unknown) =>
      s.graph(`/v1.0/communications/calls/${callId}/${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const control = (s: TestServer, path: string, body: unknown) =>
      fetch(`${s.base}/_callkeeper${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    /** Virtual time moves for both; only `runner`'s schedulers run what became due. */
    async function advance(ms: number, runner: TestServer): Promise<void> {
      clock.advance(ms);
      await runner.ck.scheduler.runNow();
      await runner.ck.operationScheduler.runNow();
    }
    async function delivered(callId: string) {
      await Promise.all([a.ck.notifier.flush(), b.ck.notifier.flush()]);
      return bot.received.flatMap((r) => r.body.value).filter((n) => n.resourceUrl.startsWith(`/communications/calls/${callId}`));
    }

    test('roster, a prompt, tones and the hang-up: each instance acts on what the other stored; notifications in order', async () => {
      const id = await a.createCall(callBody({ callbackUri: bot.url }));
      await advance(1_000, a);
      // The roster A seeded when the call was established, read on B.
      const roster = (await (await b.graph(`/v1.0/communications/calls/${id}/participants`)).json()) as { value: Participant[] };
      assert.equal(roster.value.length, 2);
      const joined = await control(b, `/calls/${id}/participants`, { displayName: 'Adele' });
      assert.equal(joined.status, 201);
      const adele = (await joined.json()) as Participant;
      const onA = (await (await a.graph(`/v1.0/communications/calls/${id}/participants`)).json()) as { value: Participant[] };
      assert.deepEqual(
        onA.value.map((p) => p.id),
        [...roster.value.map((p) => p.id), adele.id],
      );
      assert.equal(onA.value[2]?.info.identity.user?.displayName, 'Adele');

      const subscribed = await post(b, id, 'subscribeToTone', { clientContext: 'tones' });
      assert.equal(subscribed.status, 200);
      assert.equal((await control(a, `/calls/${id}/tones`, { tones: '12' })).status, 200);

      const started = await post(a, id, 'playPrompt', { clientContext: 'reminder', prompts: [PROMPT] });
      assert.equal(started.status, 200);
      const prompt = (await started.json()) as Operation;
      const running = (await (await b.graph(`/v1.0/communications/calls/${id}/operations/${prompt.id}`)).json()) as Operation;
      assert.equal(running.status, 'Running');
      // B runs the operation A started, at its moment.
      await advance(2_999, b);
      assert.equal((await delivered(id)).filter((n) => n.resourceUrl.endsWith(prompt.id)).length, 0);
      await advance(1, b);
      const done = (await delivered(id)).filter((n) => n.resourceUrl.endsWith(prompt.id));
      assert.equal(done.length, 1);
      const completion = done[0]?.resourceData as unknown as Operation | undefined;
      assert.equal(completion?.status, 'completed');
      assert.equal(completion?.clientContext, 'reminder');
      const completed = (await (await a.graph(`/v1.0/communications/calls/${id}/operations/${prompt.id}`)).json()) as Operation;
      assert.equal(completed.status, 'Completed');

      // The reminder bot hangs up on the completion, on the other instance.
      assert.equal((await b.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE' })).status, 204);
      assert.equal((await a.graph(`/v1.0/communications/calls/${id}/participants`)).status, 404);
      const all = await delivered(id);
      const lines = all.map((n) => {
        const path = n.resourceUrl.slice(`/communications/calls/${id}`.length);
        const data = n.resourceData as Record<string, unknown>;
        const tone = (data.toneInfo as { tone?: string; sequenceId?: number } | undefined) ?? undefined;
        if (path === '/participants') return `roster ${(n.resourceData as unknown as unknown[]).length}`;
        if (tone) return `tone ${tone.tone} #${tone.sequenceId}`;
        if (path.startsWith('/operations/')) return `op ${(data as unknown as Operation).clientContext}`;
        return `call ${String(data.state)}`;
      });
      assert.deepEqual(lines, [
        'call establishing',
        'call established',
        'roster 2',
        'roster 3',
        'tone tone1 #1',
        'tone tone2 #2',
        'op reminder',
        'call terminating',
        'call terminated',
      ]);
    });

    test('a transfer started on A moves through its states as B runs its steps, and ends the call', async () => {
      const id = await a.createCall(callBody({ callbackUri: bot.url }));
      await advance(1_000, a);
      const target = { transferTarget: { endpointType: 'default', identity: { user: { id: 'u3', displayName: 'Heidi' } } } };
      assert.equal((await post(a, id, 'transfer', target)).status, 202);
      const state = async (s: TestServer) =>
        ((await (await s.graph(`/v1.0/communications/calls/${id}`)).json()) as { state: string }).state;
      assert.equal(await state(b), 'transferring');
      // B sees the state A's transfer set: a second transfer is refused there.
      assert.equal((await post(b, id, 'transfer', target)).status, 400);
      await advance(1_000, b);
      assert.equal(await state(a), 'transferAccepted');
      await advance(1_000, b);
      assert.equal((await a.graph(`/v1.0/communications/calls/${id}`)).status, 404);
      const calls = (await delivered(id))
        .filter((n) => n.resourceUrl === `/communications/calls/${id}`)
        .map((n) => `${n.changeType}/${String((n.resourceData as Record<string, unknown>).state)}`);
      assert.deepEqual(calls.slice(-4), ['updated/transferring', 'updated/transferAccepted', 'updated/terminating', 'deleted/terminated']);
    });
  });
}
