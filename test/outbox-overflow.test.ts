import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SqliteCallStore } from '../src/store/sqlite-store.js';
import { callBody, startServer, type TestServer } from './helpers.js';
import { Receiver } from './receiver.js';

// Issue 16 item 5: behind a bot that never takes its notifications, pending ones grew without
// bound. Past a call's bound the oldest undelivered one is dead-lettered, and /metrics counts it.
let s: TestServer;
let bot: Receiver;
before(async () => {
  bot = await new Receiver().start();
  s = await startServer({ store: new SqliteCallStore({ outboxBounds: { perCall: 2, total: 1000 } }) });
});
after(async () => {
  await s.close();
  await bot.stop();
});

const overflowed = async () => {
  const text = await (await fetch(`${s.base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('callkeeper_notifications_overflowed_total '));
  assert.ok(line, 'the metric is exported');
  return Number(line.split(' ')[1]);
};

test('a call whose bot refuses every notification stays within its bound; the overflow is dead-lettered and counted', async () => {
  bot.behaviour = 503;
  assert.equal(await overflowed(), 0);
  const id = await s.createCall(callBody({ callbackUri: bot.url }));
  await s.advance(5_000); // established (and its roster): more than 2 wait behind the refused head
  assert.equal((await s.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE' })).status, 204);
  const pending = (await (await fetch(`${s.base}/_callkeeper/notifications?callId=${id}&status=pending`)).json()) as { value: unknown[] };
  assert.ok(pending.value.length <= 2, `at most 2 pending for the call, saw ${pending.value.length}`);
  assert.ok((await overflowed()) >= 1, 'the dead-lettered overflow is counted');
});
