/**
 * The keeper's production hardening, over real HTTP against a real callkeeper server (through
 * the fault proxy where callkeeper cannot produce the case): what ends a call, the end-storm
 * breaker, permanent errors, calls(), per-call and per-tenant targets, request ids, logger and
 * metrics. Virtual time throughout.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, afterEach, before, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { clientCredentials } from '../src/keeper/client-credentials.js';
import { KeepAlive } from '../src/keeper/keep-alive.js';
import type { KeepAliveEvents } from '../src/keeper/keep-alive-events.js';
import type { KeepAliveOptions } from '../src/keeper/keep-alive-options.js';
import { keeperMetrics } from '../src/keeper/metrics.js';
import { KEEPER_VERSION } from '../src/keeper/version.js';
import { OTHER_APP } from './helpers.js';
import { FaultProxy, MINUTE, type Rig, startRig, type Verdict } from './keeper-harness.test.js';

const OTHER = OTHER_APP;

let rig: Rig;
let proxy: FaultProxy | undefined;
let keeper: KeepAlive | undefined;
let fault: (path: string, now: number) => Verdict = () => 'forward';

before(async () => {
  rig = await startRig();
  rig.ck.apps.add(OTHER);
});
after(() => rig.close());
afterEach(async () => {
  await keeper?.close();
  keeper = undefined;
  await proxy?.close();
  proxy = undefined;
  fault = () => 'forward';
});

async function keeperViaProxy(extra: Partial<KeepAliveOptions> = {}): Promise<{ k: KeepAlive; p: FaultProxy }> {
  const p = await FaultProxy.start(rig.base, rig.clock, (path, now) => fault(path, now));
  proxy = p;
  const k = new KeepAlive({ baseUrl: `${p.url}/v1.0`, credential: rig.credential(), clock: rig.clock, ...extra });
  keeper = k;
  return { k, p };
}

function record<K extends keyof KeepAliveEvents>(k: KeepAlive, name: K): KeepAliveEvents[K][0][] {
  const out: KeepAliveEvents[K][0][] = [];
  k.on(name, ((e: KeepAliveEvents[K][0]) => out.push(e)) as never);
  return out;
}

/** Tracks each call as if its last keepAlive was one interval ago: every one is sent within seconds. */
function trackDue(k: KeepAlive, ids: string[], onEnded?: (id: string) => void) {
  const last = rig.clock.now() - 15 * MINUTE;
  for (const id of ids) k.track(id, { lastKeepAliveAt: last, ...(onEnded ? { onEnded: () => onEnded(id) } : {}) });
}

const NOT_FOUND_8522 = JSON.stringify({ error: { code: '8522', message: 'Call not found.' } });

test('wrong baseUrl (404 without 8522 for every call): nothing ends, one permanent error, slow retries, calls() says why', async () => {
  const ids = await rig.createCalls(40);
  // A wrong base path on callkeeper itself answers a 404 NotFound, not Graph's 8522.
  const p = await FaultProxy.start(rig.base, rig.clock);
  proxy = p;
  const k = new KeepAlive({ baseUrl: `${p.url}/v2.0`, credential: rig.credential(), clock: rig.clock });
  keeper = k;
  const ended = record(k, 'ended');
  const failed = record(k, 'attemptFailed');
  const permanent = record(k, 'permanentError');
  const hooks: string[] = [];
  trackDue(k, ids, (id) => hooks.push(id));
  await rig.run(k, 20 * MINUTE, 1000);

  assert.equal(ended.length, 0, 'no call ended');
  assert.equal(hooks.length, 0, 'no onEnded ran: the bot keeps its media');
  assert.equal(k.size, 40);
  assert.ok(failed.length >= 40 && failed.every((f) => f.status === 404 && f.code === 'NotFound' && f.permanent === 'notFound'));
  assert.equal(permanent.length, 1, 'one report for the whole storm');
  assert.equal(permanent[0]?.kind, 'notFound');
  assert.equal(permanent[0]?.status, 404);
  assert.match(permanent[0]?.requestId ?? '', /^[0-9a-f-]{36}$/);
  // The slow schedule: in 20 minutes at most one try per 4 minutes per call (plus the first).
  for (const id of ids) assert.ok(p.keepAlivesOf(id).length <= 6, `call ${id}: ${p.keepAlivesOf(id).length} tries`);
  const states = await k.calls();
  assert.equal(states.length, 40);
  for (const s of states) {
    assert.equal(s.state, 'permanent');
    assert.equal(s.lastError?.status, 404);
    assert.equal(s.lastError?.permanent, 'notFound');
    assert.ok(s.attempts >= 1);
    assert.equal(s.leaseHolder, k.replicaId);
    assert.equal(s.deadline, s.lastSuccessAt + 45 * MINUTE);
  }
  assert.equal(k.stats().permanent, 40);
  for (const id of ids) assert.equal((await rig.ck.store.get(id))?.state, 'established');
});

test("Graph's 404 8522 ends a call; a 404 with any other body is a reported, retried failure", async () => {
  const [gone, odd] = await rig.createCalls(2);
  assert.ok(gone && odd);
  fault = (path) =>
    path.includes(odd) ? { status: 404, body: JSON.stringify({ error: { code: 'itemNotFound', message: 'x' } }) } : 'forward';
  const { k } = await keeperViaProxy();
  const ended = record(k, 'ended');
  const failed = record(k, 'attemptFailed');
  await (await fetch(`${rig.base}/_callkeeper/calls/${gone}/expire`, { method: 'POST' })).arrayBuffer();
  trackDue(k, [gone, odd]);
  await rig.run(k, 10 * MINUTE, 1000);
  assert.deepEqual(
    ended.map((e) => [e.callId, e.code]),
    [[gone, '8522']],
  );
  assert.match(ended[0]?.requestId ?? '', /^[0-9a-f-]{36}$/);
  assert.ok(k.has(odd));
  assert.ok(failed.some((f) => f.callId === odd && f.status === 404 && f.code === 'itemNotFound'));
});

test('end-storm breaker: past the share of calls ending within a minute, 404s stop ending calls, circuitOpen says so, and it closes after its hold', async () => {
  const ids = await rig.createCalls(50);
  // Pointed at a Graph that knows none of these calls: every keepAlive answers 404 8522.
  fault = (path) => (path.endsWith('/keepAlive') ? { status: 404, body: NOT_FOUND_8522 } : 'forward');
  const { k } = await keeperViaProxy({ endBreaker: { share: 0.2, minEnds: 10, holdMs: 10 * MINUTE } });
  const ended = record(k, 'ended');
  const opened = record(k, 'circuitOpen');
  const closed = record(k, 'circuitClosed');
  const failed = record(k, 'attemptFailed');
  const hooks: string[] = [];
  trackDue(k, ids, (id) => hooks.push(id));
  await rig.run(k, 60_000, 1000);

  assert.equal(ended.length, 10, 'ends up to the share (20% of 50), then no more');
  assert.equal(hooks.length, 10);
  assert.equal(opened.length, 1);
  assert.equal(opened[0]?.ended, 10);
  assert.equal(opened[0]?.tracked, 40);
  assert.ok(opened[0]?.clientRequestId);
  assert.equal(k.size, 40, 'the rest are still kept');
  assert.ok(failed.some((f) => f.breakerOpen === true && f.status === 404 && f.code === '8522'));
  assert.ok(k.stats().breakerOpenUntil !== undefined);

  await rig.run(k, 12 * MINUTE, 1000);
  assert.equal(closed.length, 1, 'the hold is over');
  assert.ok(ended.length > 10, 'then 404 8522 ends calls again');
});

test('permanent errors (400, 403) are reported once each and retried on the slow schedule; a success re-arms the report', async () => {
  const ids = await rig.createCalls(20);
  const half = new Set(ids.slice(0, 10));
  let broken = true;
  fault = (path) => {
    const id = /calls\/([^/]+)\/keepAlive/.exec(path)?.[1];
    if (!broken || !id) return 'forward';
    return half.has(id)
      ? { status: 403, body: JSON.stringify({ error: { code: 'Forbidden', message: 'consent revoked' } }) }
      : { status: 400, body: JSON.stringify({ error: { code: 'BadRequest', message: 'no' } }) };
  };
  const { k, p } = await keeperViaProxy();
  const permanent = record(k, 'permanentError');
  const sent = record(k, 'sent');
  trackDue(k, ids);
  await rig.run(k, 12 * MINUTE, 1000);
  assert.deepEqual(permanent.map((e) => [e.kind, e.status, e.code]).sort(), [
    ['badRequest', 400, 'BadRequest'],
    ['forbidden', 403, 'Forbidden'],
  ]);
  assert.equal(permanent.find((e) => e.kind === 'forbidden')?.message, 'consent revoked');
  for (const id of ids) {
    const tries = p.keepAlivesOf(id).map((s) => s.at);
    assert.ok(tries.length >= 2 && tries.length <= 4, `${id}: ${tries.length} tries in 12 minutes`);
    for (let i = 1; i < tries.length; i++) assert.ok((tries[i] as number) - (tries[i - 1] as number) >= 4 * MINUTE - 1000);
  }
  assert.equal(sent.length, 0);
  // Consent restored: the calls recover on their next slow try; a new 403 would be news again.
  broken = false;
  await rig.run(k, 6 * MINUTE, 1000);
  assert.equal(new Set(sent.map((e) => e.callId)).size, 20);
  assert.equal(k.stats().permanent, 0);
  broken = true;
  await rig.run(k, 16 * MINUTE, 1000);
  assert.equal(permanent.length, 4, 'reported again after the success');
});

test('invalid_client and unauthorized_client at the token endpoint: permanent, reported once, the endpoint is not flooded', async () => {
  const ids = await rig.createCalls(30);
  for (const [clientId, clientSecret, kind] of [
    [DEFAULT_APP.clientId, 'a wrong secret', 'invalidClient'],
    ['ca11ca11-0000-4000-8000-0000000000ff', 'x', 'unauthorizedClient'],
  ] as const) {
    const tokenProxy = await FaultProxy.start(rig.base, rig.clock);
    try {
      const k = new KeepAlive({
        baseUrl: rig.graph,
        credential: clientCredentials({
          authority: tokenProxy.url,
          tenantId: DEFAULT_APP.tenantId,
          clientId,
          clientSecret,
          clock: rig.clock,
        }),
        clock: rig.clock,
      });
      keeper = k;
      const permanent = record(k, 'permanentError');
      const failed = record(k, 'attemptFailed');
      trackDue(k, ids);
      await rig.run(k, 20 * MINUTE, 1000);
      assert.equal(permanent.length, 1, kind);
      assert.equal(permanent[0]?.kind, kind);
      assert.match(permanent[0]?.message ?? '', new RegExp(kind === 'invalidClient' ? 'invalid_client' : 'unauthorized_client'));
      assert.ok(failed.length >= 30 && failed.every((f) => f.permanent === kind));
      const tokenRequests = tokenProxy.seen.filter((s) => s.path.includes('/oauth2/v2.0/token')).length;
      assert.ok(tokenRequests <= 6, `${kind}: ${tokenRequests} token requests in 20 minutes for 30 calls`);
      await k.close();
      keeper = undefined;
    } finally {
      await tokenProxy.close();
    }
  }
});

test('every keepAlive sends a fresh client-request-id and User-Agent callkeeper/<version>; events carry both ids', async () => {
  const ids = await rig.createCalls(3);
  const { k, p } = await keeperViaProxy();
  const sent = record(k, 'sent');
  trackDue(k, ids);
  await rig.run(k, 20 * MINUTE, 1000);
  const seen = p.seen.filter((s) => s.callId);
  assert.ok(seen.length >= 6);
  const crids = seen.map((s) => s.headers['client-request-id']);
  assert.ok(
    crids.every((c) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(c ?? '')),
    'a GUID each',
  );
  assert.equal(new Set(crids).size, crids.length, 'fresh per request');
  assert.ok(seen.every((s) => s.headers['user-agent'] === `callkeeper/${KEEPER_VERSION}`));
  for (const e of sent) {
    const wire = seen.find((s) => s.headers['client-request-id'] === e.clientRequestId);
    assert.ok(wire, 'the event names the request that was sent');
    assert.equal(e.requestId, wire.requestId, "and Graph's request-id from its answer");
    assert.ok(e.latencyMs >= 0);
  }
});

test('multi-tenant: calls of two apps kept by one keeper through a tenants resolver; a per-call baseUrl goes where it says', async () => {
  const mine = await rig.createCalls(2);
  const otherOwner = { appId: OTHER.clientId, tenantId: OTHER.tenantId, displayName: OTHER.displayName, roles: OTHER.roles };
  const theirs: string[] = [];
  for (let i = 0; i < 2; i++) {
    const c = await rig.ck.service.create(otherOwner, {
      callbackUri: 'http://127.0.0.1:9/cb',
      requestedModalities: ['audio'],
      mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
      targets: [{ identity: { user: { id: 'u1' } } }],
    });
    theirs.push(c.id);
  }
  const p = await FaultProxy.start(rig.base, rig.clock);
  proxy = p;
  const asked: string[] = [];
  const k = new KeepAlive({
    baseUrl: rig.graph,
    credential: rig.credential(),
    clock: rig.clock,
    tenants: (tenant) => {
      asked.push(tenant);
      return {
        credential: clientCredentials({
          authority: rig.base,
          tenantId: OTHER.tenantId,
          clientId: OTHER.clientId,
          clientSecret: OTHER.clientSecret,
          clock: rig.clock,
        }),
      };
    },
  });
  keeper = k;
  const ended = record(k, 'ended');
  const last = rig.clock.now() - 15 * MINUTE;
  k.track(mine[0] as string, { lastKeepAliveAt: last });
  k.track(mine[1] as string, { lastKeepAliveAt: last, baseUrl: `${p.url}/v1.0` });
  for (const id of theirs) k.track(id, { lastKeepAliveAt: last, tenant: OTHER.tenantId });
  await rig.run(k, 2 * 60 * MINUTE, 5000);
  assert.equal(ended.length, 0, "each call was sent with its own tenant's token (another app's call is a 404 8522)");
  assert.deepEqual(asked, [OTHER.tenantId], 'the resolver is asked once per tenant');
  for (const id of [...mine, ...theirs]) assert.equal((await rig.ck.store.get(id))?.state, 'established');
  assert.deepEqual(new Set(p.seen.map((s) => s.callId)), new Set([mine[1]]), 'only the call with that baseUrl went through it');
  const states = await k.calls();
  assert.equal(states.find((s) => s.callId === theirs[0])?.tenant, OTHER.tenantId);
  assert.equal(states.find((s) => s.callId === mine[1])?.baseUrl, `${p.url}/v1.0`);
});

test('logger (pino) and prom-client metrics: sends, failures by status, latency, calls at risk', async () => {
  const ids = await rig.createCalls(5);
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    }),
  );
  let down = false;
  fault = (path) =>
    down && path.endsWith('/keepAlive') ? { status: 503, body: '{"error":{"code":"ServiceUnavailable","message":"x"}}' } : 'forward';
  const { k } = await keeperViaProxy({ logger, atRiskAfter: 20 * MINUTE });
  const registry = new Registry();
  const metrics = keeperMetrics(k, { registry });
  const sent = record(k, 'sent');
  const failed = record(k, 'attemptFailed');
  trackDue(k, ids);
  await rig.run(k, 16 * MINUTE, 1000);
  down = true;
  await rig.run(k, 22 * MINUTE, 1000);
  const text = await registry.metrics();
  const value = (re: RegExp) => Number(re.exec(text)?.[1]);
  assert.equal(value(/^callkeeper_keeper_keepalives_sent_total (\d+)/m), sent.length);
  assert.equal(value(/^callkeeper_keeper_keepalive_failures_total\{status="503",permanent="false"\} (\d+)/m), failed.length);
  assert.equal(value(/^callkeeper_keeper_keepalive_duration_seconds_count\{outcome="sent"\} (\d+)/m), sent.length);
  assert.equal(value(/^callkeeper_keeper_calls_at_risk (\d+)/m), 5);
  assert.equal(value(/^callkeeper_keeper_calls_tracked (\d+)/m), 5);
  assert.equal(value(/^callkeeper_keeper_leases_held (\d+)/m), 5);
  const atRisk = lines.filter((l) => l.msg === 'keeper: call at risk, no successful keepAlive for a while');
  assert.equal(atRisk.length, 5);
  assert.ok(atRisk.every((l) => l.level === 40 && typeof l.callId === 'string' && typeof l.clientRequestId === 'string'));
  assert.ok(lines.some((l) => l.level === 20 && l.status === 503));
  metrics.remove();
  assert.equal(await registry.metrics(), '\n');
});
