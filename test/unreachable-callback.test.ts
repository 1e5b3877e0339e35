import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { callBody, startServer } from './helpers.js';
import { Receiver } from './receiver.js';

/** Collects the server's log lines (pino JSON). */
function logCapture(): { stream: Writable; warnings(): { msg: string; callbackUri?: string }[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const warnings = () =>
    lines.map((l) => JSON.parse(l) as { level: number; msg: string; callbackUri?: string }).filter((l) => l.level === 40);
  return { stream, warnings };
}

test('an unreachable callback is logged at warn the first time, once per bot, and again after it recovered', async () => {
  const log = logCapture();
  const bot = await new Receiver().startOnQuietPort();
  const url = bot.url;
  await bot.stop(); // the bot is not running: connections to it are refused
  const s = await startServer({ logger: { level: 'warn', stream: log.stream } });
  try {
    await s.createCall(callBody({ callbackUri: url }));
    await s.createCall(callBody({ callbackUri: url }));
    await s.ck.notifier.flush();
    const mine = () => log.warnings().filter((l) => l.callbackUri === url && l.msg.startsWith('notifications to '));
    let w = mine();
    assert.equal(w.length, 1, JSON.stringify(log.warnings()));
    assert.match(w[0]?.msg ?? '', new RegExp(`notifications to ${new URL(url).origin} fail \\(ECONNREFUSED`));
    assert.match(w[0]?.msg ?? '', /\/_callkeeper\/notifications\?status=pending/);

    // The bot comes up: deliveries succeed; when it goes away again, that is news again.
    await bot.start(Number(new URL(url).port));
    await s.advance(120_000);
    await s.ck.notifier.flush();
    assert.ok(bot.received.length > 0, 'delivered once the bot is up');
    await bot.stop();
    await s.createCall(callBody({ callbackUri: url }));
    await s.ck.notifier.flush();
    w = mine();
    assert.equal(w.length, 2);
  } finally {
    await s.close();
  }
});
