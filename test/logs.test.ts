/**
 * One logger: made first, handed to Fastify, and used by every module, so a real server's JSON
 * log lines are one stream in which request lines and domain events share their base fields, and
 * a domain event caused by a request carries that request's ids (README, "Metrics and logs").
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { callBody, MINUTE, startServer, type TestServer } from './helpers.js';
import { Receiver } from './receiver.js';

interface Line {
  level: number;
  time: number;
  pid: number;
  hostname: string;
  msg: string;
  event?: string;
  callId?: string;
  appId?: string;
  tenantId?: string;
  requestId?: string;
  clientRequestId?: string;
  operationId?: string;
  kind?: string;
  resultInfo?: { code: number; subcode: number };
  req?: { method: string; url: string };
  res?: { statusCode: number };
}

/** A stream that parses every JSON line written to it (and fails on anything else). */
function jsonLines(): { stream: Writable; lines: Line[] } {
  const lines: Line[] = [];
  let rest = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      const text = rest + chunk.toString();
      const parts = text.split('\n');
      rest = parts.pop() ?? '';
      for (const l of parts) if (l.trim()) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { stream, lines };
}

const BASE_FIELDS = ['level', 'time', 'pid', 'hostname', 'msg'] as const;

describe('one logger for requests and domain events', () => {
  let s: TestServer;
  let bot: Receiver;
  const { stream, lines } = jsonLines();
  before(async () => {
    bot = await new Receiver().start();
    s = await startServer({ logger: { level: 'info', stream } });
  });
  after(async () => {
    await s.close();
    await bot.stop();
  });

  const post = (path: string, body?: unknown, headers: Record<string, string> = {}) =>
    s.graph(`/v1.0/communications/calls${path}`, {
      method: 'POST',
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const eventsOf = (callId: string, event: string) => lines.filter((l) => l.callId === callId && l.event === event);
  const requestLines = (requestId: string) => lines.filter((l) => l.requestId === requestId && l.event === undefined);

  test("a keepAlive's domain event is in the same stream as Fastify's lines for that request, with the same base fields and ids", async () => {
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    const res = await post(`/${id}/keepAlive`, undefined, { 'client-request-id': 'bot-keepalive-0001' });
    assert.equal(res.status, 200);
    const requestId = res.headers.get('request-id') ?? '';
    assert.ok(requestId);

    const [kept, ...more] = eventsOf(id, 'call.keepAlive');
    assert.equal(more.length, 0, 'one event per keepAlive');
    assert.ok(kept, 'call.keepAlive is logged');
    assert.equal(kept.level, 30);
    assert.equal(kept.requestId, requestId, "the request's id, as in its request-id header");
    assert.equal(kept.clientRequestId, 'bot-keepalive-0001', "the client's client-request-id");
    assert.deepEqual([kept.appId, kept.tenantId], [DEFAULT_APP.clientId, DEFAULT_APP.tenantId]);

    const fastify = requestLines(requestId);
    assert.deepEqual(
      fastify.map((l) => l.msg),
      ['incoming request', 'request completed'],
      "Fastify's own lines for the request carry the same requestId",
    );
    assert.equal(fastify[0]?.req?.url, `/v1.0/communications/calls/${id}/keepAlive`);
    for (const l of [...fastify, kept]) {
      for (const f of BASE_FIELDS) assert.ok(l[f] !== undefined, `${f} on "${l.msg}"`);
      assert.deepEqual([l.pid, l.hostname], [kept.pid, kept.hostname], 'one logger: the same base fields');
    }
    // Ordered as it happened: the event comes between the request's arrival and its completion.
    const order = [fastify[0], kept, fastify[1]].map((l) => lines.indexOf(l as Line));
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
    );
  });

  test('call created, answered, hung up, and an operation started carry their request; its completion carries the call', async () => {
    const created = await post('', callBody({ callbackUri: bot.url }), { 'client-request-id': 'bot-create-0001' });
    assert.equal(created.status, 201);
    const id = ((await created.json()) as { id: string }).id;
    const [c] = eventsOf(id, 'call.created');
    assert.deepEqual([c?.requestId, c?.clientRequestId], [created.headers.get('request-id'), 'bot-create-0001']);

    await s.advance(1_000);
    assert.equal(eventsOf(id, 'call.established')[0]?.requestId, undefined, 'time made it established: no request');
    const prompt = { '@odata.type': '#microsoft.graph.mediaPrompt', mediaInfo: { uri: 'https://cdn.contoso.com/a.wav' } };
    const played = await post(`/${id}/playPrompt`, { clientContext: 'c1', prompts: [prompt] });
    assert.equal(played.status, 200);
    const opId = ((await played.json()) as { id: string }).id;
    const [started] = eventsOf(id, 'operation.started');
    assert.deepEqual([started?.operationId, started?.kind, started?.requestId], [opId, 'playPrompt', played.headers.get('request-id')]);
    await s.advance(s.ck.botActions.config.promptMs);
    const [done] = eventsOf(id, 'operation.completed');
    assert.equal(done?.operationId, opId);
    assert.equal(done?.requestId, undefined);

    const hung = await s.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE' });
    assert.equal(hung.status, 204);
    const [ended] = eventsOf(id, 'call.ended');
    assert.deepEqual([ended?.requestId, ended?.resultInfo?.subcode], [hung.headers.get('request-id'), 7000]);

    const rung = await fetch(`${s.base}/_callkeeper/incoming-calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'client-request-id': 'test-ring-0001' },
      body: JSON.stringify({ appId: DEFAULT_APP.clientId, callbackUri: bot.url }),
    });
    const incoming = ((await rung.json()) as { id: string }).id;
    assert.equal(eventsOf(incoming, 'call.incoming')[0]?.clientRequestId, 'test-ring-0001', 'a control request is a cause too');
    const answered = await post(`/${incoming}/answer`, {
      mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
      acceptedModalities: ['audio'],
      callbackUri: bot.url,
    });
    assert.equal(answered.status, 202);
    assert.equal(eventsOf(incoming, 'call.answered')[0]?.requestId, answered.headers.get('request-id'));
  });

  test('an expiry (the sweep, no request) logs the call id and what happened, with no request id', async () => {
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await s.advance(45 * MINUTE);
    const [timeout] = eventsOf(id, 'call.keepAliveTimeout');
    assert.ok(timeout, 'call.keepAliveTimeout is logged with the call id');
    assert.equal(timeout.level, 40);
    assert.deepEqual([timeout.resultInfo?.code, timeout.resultInfo?.subcode], [408, 8537]);
    assert.equal(timeout.requestId, undefined);
    const [ended] = eventsOf(id, 'call.ended');
    assert.deepEqual([ended?.resultInfo?.code, ended?.resultInfo?.subcode, ended?.appId], [408, 8537, DEFAULT_APP.clientId]);
    for (const f of BASE_FIELDS) assert.ok(timeout[f] !== undefined, f);
  });

  test("a transfer's end is a domain event too (operation.started by the request, call.ended 0/7015 by time)", async () => {
    const id = await s.createCall(callBody({ callbackUri: bot.url }));
    await s.advance(1_000);
    const res = await post(`/${id}/transfer`, { transferTarget: { identity: { user: { id: 'u2' } } } });
    assert.equal(res.status, 202);
    assert.equal(eventsOf(id, 'operation.started')[0]?.requestId, res.headers.get('request-id'));
    await s.advance(s.ck.botActions.config.transferStepMs);
    await s.advance(s.ck.botActions.config.transferStepMs);
    assert.equal((await s.ck.store.get(id))?.state, 'terminated');
    const [ended] = eventsOf(id, 'call.ended');
    assert.deepEqual([ended?.resultInfo?.code, ended?.resultInfo?.subcode, ended?.requestId], [0, 7015, undefined]);
  });

  test('an incoming call left unanswered past its window is a warning naming the call', async () => {
    const rung = await fetch(`${s.base}/_callkeeper/incoming-calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ appId: DEFAULT_APP.clientId, callbackUri: bot.url, policyBasedRecording: true }),
    });
    const id = ((await rung.json()) as { id: string }).id;
    const [ringing] = eventsOf(id, 'call.incoming') as (Line & { deadline?: number; policyBasedRecording?: boolean })[];
    assert.deepEqual([ringing?.deadline, ringing?.policyBasedRecording], [s.clock.now() + 5_000, true], 'the 5 s window is in the log');
    await s.advance(5_000);
    const [missed] = eventsOf(id, 'call.unanswered');
    assert.equal(missed?.level, 40);
    assert.deepEqual(
      [missed?.resultInfo?.subcode, (missed as { policyBasedRecording?: boolean } | undefined)?.policyBasedRecording],
      [10057, true],
    );
    assert.equal(missed?.requestId, undefined, 'the window ran out: no request');
  });
});

describe('a logger of your own', () => {
  test('createCallkeeper({ logger }) takes a pino logger: Fastify and the domain write through it', async () => {
    const { stream, lines } = jsonLines();
    const mine = pino({ level: 'info', base: { service: 'my-bot-tests' } }, stream);
    const s = await startServer({ logger: mine });
    try {
      assert.equal(s.ck.logger, mine, 'the logger given is the one used, not a copy');
      const id = await s.createCall(callBody({ callbackUri: 'http://127.0.0.1:9/unused' }));
      const res = await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' });
      const requestId = res.headers.get('request-id');
      const mineLines = lines.filter((l) => l.requestId === requestId);
      assert.deepEqual(
        mineLines.map((l) => l.event ?? l.msg),
        ['incoming request', 'call.keepAlive', 'request completed'],
      );
      for (const l of mineLines) assert.equal((l as unknown as { service: string }).service, 'my-bot-tests');
    } finally {
      await s.close();
    }
  });
});
