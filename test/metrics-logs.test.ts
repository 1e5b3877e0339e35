/** GET /metrics (names and values a scraper sees), domain events in the log, and the control guard on the new routes. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_DISPATCHER } from '../src/notifications/dispatcher.js';
import { callBody, MINUTE, startServer, type TestServer } from './helpers.js';
import { Receiver } from './receiver.js';

interface LogLine {
  level: number;
  event?: string;
  callId?: string;
  requestId?: string;
  resultInfo?: { code: number; subcode: number };
  attempt?: number;
  statusCode?: number;
}

describe('metrics and domain logs', () => {
  let s: TestServer;
  let bot: Receiver;
  const lines: LogLine[] = [];
  before(async () => {
    bot = await new Receiver().start();
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
        done();
      },
    });
    s = await startServer({
      logger: { level: 'info', stream },
      notifications: { ...DEFAULT_DISPATCHER, random: () => 0, retry: { baseMs: 1_000, maxMs: 60_000, retryForMs: 30 * MINUTE } },
    });
  });
  after(async () => {
    await s.close();
    await bot.stop();
  });
  const metrics = async () => {
    const res = await fetch(`${s.base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return res.text();
  };
  const sample = (text: string, name: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l === name);
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  };

  test('a call through its life shows in every metric and as domain events', async () => {
    // The bot fails the first delivery (retried), then takes them; later it refuses for good (dead).
    bot.behaviour = 500;
    const created = await s.graph('/v1.0/communications/calls', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(callBody({ callbackUri: bot.url })),
    });
    assert.equal(created.status, 201);
    const id = ((await created.json()) as { id: string }).id;
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' })).status, 200);
    assert.equal((await s.graph('/v1.0/communications/calls/nope/keepAlive', { method: 'POST' })).status, 404);

    let text = await metrics();
    assert.equal(sample(text, 'callkeeper_active_calls'), 1);
    assert.ok((sample(text, 'callkeeper_outbox_depth') ?? 0) >= 1, 'establishing waits for its retry');
    assert.equal(
      sample(text, 'callkeeper_http_requests_total{route="/v1.0/communications/calls/:id/keepAlive",method="POST",status="200"}'),
      1,
    );
    assert.equal(sample(text, 'callkeeper_http_requests_total{route="/v1.0/communications/calls",method="POST",status="201"}'), 1);
    assert.equal(sample(text, 'callkeeper_keepalives_total{status="200"}'), 1);
    assert.equal(sample(text, 'callkeeper_keepalives_total{status="404"}'), 1);
    assert.equal(sample(text, 'callkeeper_calls_created_total{direction="outgoing"}'), 1);
    assert.ok(
      (sample(text, 'callkeeper_http_request_duration_seconds_count{route="/v1.0/communications/calls/:id/keepAlive",method="POST"}') ??
        0) >= 2,
    );

    await s.ck.notifier.flush();
    bot.behaviour = 202;
    await s.advance(2_000);
    await s.ck.notifier.flush();
    await s.advance(45 * MINUTE);
    bot.behaviour = 403;
    await s.ck.notifier.flush();

    text = await metrics();
    assert.equal(sample(text, 'callkeeper_active_calls'), 0);
    assert.equal(sample(text, 'callkeeper_calls_ended_total{code="408",subcode="8537"}'), 1);
    assert.equal(sample(text, 'callkeeper_notification_deliveries_total{outcome="retry"}'), 1);
    assert.ok((sample(text, 'callkeeper_notification_deliveries_total{outcome="delivered"}') ?? 0) >= 2);
    assert.ok((sample(text, 'callkeeper_notification_deliveries_total{outcome="dead"}') ?? 0) >= 1);
    assert.ok((sample(text, 'callkeeper_notification_delivery_duration_seconds_count{outcome="delivered"}') ?? 0) >= 2);
    assert.equal(sample(text, 'callkeeper_outbox_depth'), 0);

    const events = lines.filter((l) => l.callId === id);
    const created_ = events.find((l) => l.event === 'call.created');
    assert.equal(created_?.level, 30);
    assert.equal(created_?.requestId, created.headers.get('request-id'));
    const failed = events.find((l) => l.event === 'notification.failed');
    assert.deepEqual([failed?.level, failed?.attempt, failed?.statusCode], [40, 1, 500]);
    assert.equal(events.find((l) => l.event === 'notification.retried')?.level, 30);
    const timeout = events.find((l) => l.event === 'call.keepAliveTimeout');
    assert.equal(timeout?.level, 40);
    assert.deepEqual([timeout?.resultInfo?.code, timeout?.resultInfo?.subcode], [408, 8537]);
    assert.equal(events.find((l) => l.event === 'call.ended')?.level, 30);
    const dead = events.find((l) => l.event === 'notification.deadLettered');
    assert.deepEqual([dead?.level, dead?.statusCode], [40, 403]);
  });
});

describe('the control guard on the new routes', () => {
  const ROUTES: [string, string, string?][] = [
    ['GET', '/metrics'],
    ['GET', '/_callkeeper/requests'],
    ['GET', '/_callkeeper/faults'],
    ['POST', '/_callkeeper/faults', '{"effect":{"status":503}}'],
    ['DELETE', '/_callkeeper/faults'],
    ['POST', '/_callkeeper/reset', '{}'],
  ];

  test('with a control token: refused without it (401), served with it in the header', async () => {
    const s = await startServer({ controlToken: 'sesame' });
    try {
      for (const [method, path, body] of ROUTES) {
        const init = { method, headers: { 'content-type': 'application/json' }, ...(body ? { body } : {}) };
        const refused = await fetch(`${s.base}${path}`, init);
        assert.equal(refused.status, 401, `${method} ${path}`);
        const ok = await fetch(`${s.base}${path}`, { ...init, headers: { ...init.headers, 'x-callkeeper-control-token': 'sesame' } });
        assert.ok(ok.status < 300, `${method} ${path} with the token: ${ok.status}`);
      }
    } finally {
      await s.close();
    }
  });

  test('without a token: a foreign Host or Origin is refused (403), loopback is served', async () => {
    const s = await startServer();
    try {
      const { request } = await import('node:http');
      const port = Number(new URL(s.base).port);
      const status = (path: string, headers: Record<string, string>) =>
        new Promise<number>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        });
      for (const [method, path] of ROUTES) {
        if (method !== 'GET') continue;
        assert.equal(await status(path, { host: 'rebound.example.com' }), 403, `${path} with a rebinding Host`);
        assert.equal(
          await status(path, { host: `127.0.0.1:${port}`, origin: 'https://evil.example.com' }),
          403,
          `${path} with a foreign Origin`,
        );
        assert.equal(await status(path, { host: `localhost:${port}` }), 200, `${path} on loopback`);
      }
    } finally {
      await s.close();
    }
  });
});
