import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Bot, startBot } from '../examples/bot/bot.js';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { callBody, MINUTE, startServer, type TestServer } from './helpers.js';

describe('examples/bot end to end (real HTTP both ways, virtual time on both sides)', () => {
  let s: TestServer;
  let bot: Bot;
  before(async () => {
    s = await startServer();
    bot = await startBot({
      graphUrl: `${s.base}/v1.0`,
      authority: s.base,
      tenantId: DEFAULT_APP.tenantId,
      clientId: DEFAULT_APP.clientId,
      clientSecret: DEFAULT_APP.clientSecret,
      openIdConfigUrl: `${s.base}/botframework/v1/.well-known/openidconfiguration`,
      clock: s.clock,
    });
  });
  after(async () => {
    await bot.close();
    await s.close();
  });

  /** Advances both sides in steps, letting notifications, answers and keepAlives happen. */
  async function run(ms: number, stepMs = 30_000): Promise<void> {
    for (let t = 0; t < ms; t += stepMs) {
      await s.advance(Math.min(stepMs, ms - t));
      for (let i = 0; i < 5; i++) {
        await s.ck.notifier.flush();
        await bot.settled();
        await bot.keeper.whenIdle();
      }
    }
  }

  test('it answers an incoming call and keeps it alive for 3 virtual hours', async () => {
    const res = await fetch(`${s.base}/_callkeeper/incoming-calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ appId: DEFAULT_APP.clientId, callbackUri: bot.callbackUrl }),
    });
    const { id } = (await res.json()) as { id: string };
    await run(5_000, 1_000);
    assert.equal(bot.calls.get(id)?.state, 'established');
    await run(3 * 60 * MINUTE);
    assert.equal((await s.ck.store.get(id))?.state, 'established', 'the bot kept it alive');
    assert.ok(bot.keeper.has(id));
  });

  test('an outgoing call the other party hangs up: the terminated notification cleans it up', async () => {
    const id = await bot.call('8d4d8ca3-0000-4000-8000-000000000001');
    await run(5_000, 1_000);
    await fetch(`${s.base}/_callkeeper/calls/${id}/hangup`, { method: 'POST' });
    await run(1_000, 1_000);
    assert.equal(bot.calls.get(id)?.endedBy, 'terminated notification');
    assert.equal(bot.calls.get(id)?.resultInfo?.subcode, 18503);
    assert.equal(bot.keeper.has(id), false, 'no more keepAlives for it');
  });

  test('a call whose end notification goes elsewhere is cleaned up on the keepAlive 404', async () => {
    // Placed by an earlier run of the bot, whose callback address is gone; this run adopts it.
    const id = await s.createCall(callBody({ callbackUri: 'http://127.0.0.1:9/gone' }));
    bot.adopt(id);
    await run(5_000, 1_000);
    await fetch(`${s.base}/_callkeeper/calls/${id}/hangup`, { method: 'POST' });
    await run(20 * MINUTE);
    assert.equal(bot.calls.get(id)?.endedBy, 'keepAlive 404');
    assert.equal(bot.keeper.has(id), false);
  });

  test('a notification with a forged token is refused with 403', async () => {
    const res = await fetch(bot.callbackUrl, {
      method: 'POST',
      headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.', 'content-type': 'application/json' },
      body: JSON.stringify({ value: [] }),
    });
    assert.equal(res.status, 403);
    assert.ok(bot.refused >= 1);
  });
});
