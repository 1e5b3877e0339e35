/**
 * Fault rules on notifications ("target": "notifications"): the bot receives them late, but
 * every one and in order; a latency rule slows a delivery in real time.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { DEFAULT_DISPATCHER } from '../src/notifications/dispatcher.js';
import { callBody, MINUTE, startServer, type TestServer } from './helpers.js';
import { Receiver } from './receiver.js';

interface DeliveryView {
  status: string;
  attempts: { statusCode: number | null; error: string | null; outcome: string }[];
  state: string;
}

describe('notification faults', () => {
  let s: TestServer;
  let bot: Receiver;
  before(async () => {
    s = await startServer({
      notifications: { ...DEFAULT_DISPATCHER, random: () => 0, retry: { baseMs: 1_000, maxMs: 60_000, retryForMs: 30 * MINUTE } },
    });
  });
  after(() => s.close());
  beforeEach(async () => {
    bot = await new Receiver().start();
    await fetch(`${s.base}/_callkeeper/faults`, { method: 'DELETE' });
  });
  afterEach(() => bot.stop());

  const addFault = async (rule: unknown) => {
    const res = await fetch(`${s.base}/_callkeeper/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(rule),
    });
    assert.equal(res.status, 201);
    return (await res.json()) as { id: string };
  };
  const step = async (ms: number) => {
    await s.advance(ms);
    await s.ck.notifier.flush();
  };

  test('a dropped delivery (503, reset) arrives later, and the call notifications keep their order', async () => {
    const rule = await addFault({
      target: 'notifications',
      match: { appId: DEFAULT_APP.clientId, path: '/api/*' },
      effect: { status: 503 },
      count: 3,
    });
    const reset = await addFault({ target: 'notifications', match: { path: '/api/calls' }, effect: { reset: true }, count: 1 });
    const created = s.clock.now();
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await s.ck.notifier.flush();
    assert.deepEqual(bot.statesOf(id), [], 'the first attempt was dropped');
    // establishing is retried with backoff while established (due after 1 s) waits behind it.
    for (let i = 0; i < 60 && bot.statesOf(id).length < 2; i++) await step(1_000);
    assert.deepEqual(bot.statesOf(id), ['updated/establishing', 'updated/established']);
    const arrived = s.clock.now();
    assert.ok(arrived - created >= 7_000, `late: ${arrived - created} ms of virtual time (backoff 1 + 2 + 4 s at least)`);
    const log = (await (await fetch(`${s.base}/_callkeeper/notifications?callId=${id}`)).json()) as { value: DeliveryView[] };
    const first = log.value.find((d) => d.state === 'establishing');
    assert.deepEqual(
      first?.attempts.map((a) => [a.statusCode, a.outcome]),
      [
        [503, 'retry'],
        [503, 'retry'],
        [503, 'retry'],
        [null, 'retry'],
        [202, 'delivered'],
      ],
    );
    assert.ok(first?.attempts[0]?.error?.includes(rule.id));
    assert.ok(first?.attempts[3]?.error?.includes(reset.id));
    const faults = (await (await fetch(`${s.base}/_callkeeper/faults`)).json()) as { value: unknown[] };
    assert.deepEqual(faults.value, [], 'both rules are spent');
  });

  test('a rule for another call or app leaves deliveries alone; latencyMs delays one in real time', async () => {
    await addFault({ target: 'notifications', match: { callId: 'another-call' }, effect: { status: 500 } });
    await addFault({ target: 'notifications', match: { appId: 'another-app' }, effect: { status: 500 } });
    await addFault({ target: 'notifications', match: { path: '/api/calls' }, effect: { latencyMs: 300 }, count: 1 });
    const t0 = performance.now();
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await s.ck.notifier.flush();
    assert.ok(performance.now() - t0 >= 290);
    assert.deepEqual(bot.statesOf(id), ['updated/establishing']);
  });
});
