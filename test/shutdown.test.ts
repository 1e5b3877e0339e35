import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnServe } from './cli-process.js';
import { callBody, fetchToken, tempDir } from './helpers.js';

test('SIGTERM behind a bot that never answers: the process stops within its grace period, exits 0, store closed, and the cut-off notification is delivered after restart', async () => {
  const dir = tempDir();
  // A bot that takes every notification and never answers; later it answers 202.
  const hung: ServerResponse[] = [];
  const seen: string[] = [];
  let answering = false;
  let onRequest: (() => void) | undefined;
  const bot = createServer((req, res) => {
    seen.push(String(req.headers['client-request-id']));
    req.resume();
    if (answering) res.writeHead(202).end();
    else hung.push(res);
    onRequest?.();
  });
  await new Promise<void>((resolve) => bot.listen(0, '127.0.0.1', resolve));
  const callbackUri = `http://127.0.0.1:${(bot.address() as AddressInfo).port}/api/calls`;
  const firstRequest = () =>
    new Promise<void>((resolve) => {
      if (seen.length > 0) return resolve();
      onRequest = resolve;
    });
  try {
    // A notification request may hang for a minute: longer than the 10 s hard stop, so only the
    // shutdown grace period can end it in time.
    const p = await spawnServe(['--data', dir.path, '--no-https', '--notify-timeout', '60s']);
    const token = await fetchToken(p.base);
    const created = await fetch(`${p.base}/v1.0/communications/calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(callBody({ callbackUri })),
    });
    assert.equal(created.status, 201);
    await firstRequest();
    const cutOff = seen[0];
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.output());
    assert.match(p.output(), /stopped/);
    assert.equal(existsSync(join(dir.path, 'callkeeper.db-wal')), false, 'the WAL was checkpointed and removed');

    // Restarted, the notification that was cut off comes again once its lease is over.
    for (const res of hung) res.destroy();
    answering = true;
    seen.length = 0;
    const again = await spawnServe(['--data', dir.path, '--no-https']);
    try {
      const control = (path: string, body: unknown) =>
        fetch(`${again.base}/_callkeeper${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      assert.equal((await control('/clock/advance', { ms: '5m' })).status, 200);
      assert.equal((await control('/notifications/flush', {})).status, 200);
      assert.ok(seen.includes(String(cutOff)), `redelivered ${cutOff}; seen ${seen.join(', ')}`);
    } finally {
      again.child.kill('SIGTERM');
      assert.equal(await again.exited, 0);
    }
  } finally {
    for (const res of hung) res.destroy();
    bot.closeAllConnections();
    await new Promise((resolve) => bot.close(resolve));
    dir.remove();
  }
});
