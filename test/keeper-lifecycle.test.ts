/**
 * The keeper against a real callkeeper server, one call at a time: cadence, hang-ups elsewhere,
 * token refresh, untrack, and what happens as a deadline comes near. Virtual time throughout.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js';
import { request } from 'undici';
import { KeepAlive } from '../src/keeper/keep-alive.js';
import type { AttemptFailedEvent, EndedEvent, KeepAliveEvents, SentEvent } from '../src/keeper/keep-alive-events.js';
import type { KeepAliveOptions } from '../src/keeper/keep-alive-options.js';
import type { AccessTokenLike } from '../src/keeper/token-source.js';
import { FaultProxy, HOUR, MINUTE, type Rig, startRig, type Verdict } from './keeper-harness.test.js';

let rig: Rig;
let proxy: FaultProxy | undefined;
let keeper: KeepAlive | undefined;
/** Per-test fault rule for the proxy; reset after each test. */
let fault: (path: string, now: number) => Verdict = () => 'forward';

before(async () => {
  rig = await startRig();
});
after(() => rig.close());
afterEach(async () => {
  await keeper?.close();
  keeper = undefined;
  await proxy?.close();
  proxy = undefined;
  fault = () => 'forward';
});

/** A keeper that talks to the server through a recording (and fault-injecting) proxy. */
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

async function serverState(id: string): Promise<string | undefined> {
  return (await rig.ck.store.get(id))?.state;
}

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - (times[i] as number));

test('keeps calls alive well past 45 minutes with one keepAlive per interval, each at its own slot', async () => {
  const ids = await rig.createCalls(3);
  const { k, p } = await keeperViaProxy();
  const sent = record(k, 'sent');
  const t0 = rig.clock.now();
  for (const id of ids) k.track(id);
  await rig.run(k, 3 * HOUR, 5000);

  for (const id of ids) {
    assert.equal(await serverState(id), 'established', `call ${id} must still be up after 3 virtual hours`);
    const times = p.keepAlivesOf(id).map((s) => s.at);
    assert.ok((times[0] ?? Number.POSITIVE_INFINITY) - t0 <= 15 * MINUTE, 'first keepAlive within the first interval');
    assert.deepEqual(new Set(gaps(times)), new Set([15 * MINUTE]), 'then exactly every 15 minutes');
    assert.equal(times.length, 12);
  }
  const firsts = ids.map((id) => p.keepAlivesOf(id)[0]?.at ?? 0);
  assert.equal(new Set(firsts).size, 3, 'three calls do not share a slot');
  assert.equal(sent.length, 36);
  // A call's slot is exact; the keeper wakes on whole seconds (its tick), so a send is up to 1 s late.
  assert.ok(
    sent.every((e) => e.attempts === 1 && e.nextAt - e.sentAt > 15 * MINUTE - 1000 && e.nextAt - e.sentAt <= 15 * MINUTE),
    'one attempt each, the next one interval on',
  );
});

test('a call hung up elsewhere fires onEnded exactly once, stops tracking, and no request follows', async () => {
  const [hungUp, expired, bystander] = await rig.createCalls(3);
  assert.ok(hungUp && expired && bystander);
  const { k, p } = await keeperViaProxy();
  const ended = record(k, 'ended');
  const hookCalls: EndedEvent[] = [];
  for (const id of [hungUp, expired, bystander]) k.track(id, { onEnded: (e) => void hookCalls.push(e) });
  await rig.run(k, 20 * MINUTE, 5000);

  const token = await rig.token();
  const del = await request(`${rig.graph}/communications/calls/${hungUp}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${token}` },
  });
  await del.body.dump();
  assert.equal(del.statusCode, 204);
  const exp = await request(`${rig.base}/_callkeeper/calls/${expired}/expire`, { method: 'POST' });
  await exp.body.dump();
  assert.equal(exp.statusCode, 200);
  const endedAt = rig.clock.now();

  await rig.run(k, 2 * HOUR, 5000);

  assert.deepEqual(hookCalls.map((e) => e.callId).sort(), [hungUp, expired].sort(), 'each hook ran exactly once');
  assert.deepEqual(
    ended.map((e) => [e.callId, e.status, e.code]).sort(),
    [
      [hungUp, 404, '8522'],
      [expired, 404, '8522'],
    ].sort(),
  );
  for (const id of [hungUp, expired]) {
    assert.equal(k.has(id), false);
    const after404 = p.keepAlivesOf(id).filter((s) => s.at >= endedAt);
    assert.deepEqual(
      after404.map((s) => s.status),
      [404],
      'one request learns of the end, none follows',
    );
  }
  assert.equal(await serverState(bystander), 'established');
  assert.equal(k.stats().tracked, 1);
  assert.equal(k.stats().ended, 2);
});

test('an onEnded hook that throws is reported as hookFailed and still runs only once', async () => {
  const [id] = await rig.createCalls(1);
  assert.ok(id);
  const { k } = await keeperViaProxy();
  const failures = record(k, 'hookFailed');
  let runs = 0;
  k.track(id, {
    onEnded: async () => {
      runs += 1;
      throw new Error('clean-up broke');
    },
  });
  await (await request(`${rig.base}/_callkeeper/calls/${id}/expire`, { method: 'POST' })).body.dump();
  await rig.run(k, 30 * MINUTE, 10_000);
  assert.equal(runs, 1);
  assert.equal(failures.length, 1);
  assert.match(String(failures[0]?.error), /clean-up broke/);
});

test('untrack stops the requests for that call; close stops everything', async () => {
  const [dropped, kept] = await rig.createCalls(2);
  assert.ok(dropped && kept);
  const { k, p } = await keeperViaProxy();
  k.track(dropped);
  k.track(kept);
  await rig.run(k, 20 * MINUTE, 5000);
  assert.equal(k.untrack(dropped), true);
  assert.equal(k.untrack(dropped), false);
  const cut = rig.clock.now();
  await rig.run(k, HOUR, 5000);
  assert.equal(p.keepAlivesOf(dropped).filter((s) => s.at >= cut).length, 0);
  assert.equal(await serverState(dropped), 'terminated', 'without keepAlives the server ends it');
  assert.equal(await serverState(kept), 'established');

  await k.close();
  const closedAt = rig.clock.now();
  rig.clock.advance(HOUR);
  await new Promise((r) => setImmediate(r));
  assert.equal(p.seen.filter((s) => s.at >= closedAt).length, 0);
  assert.throws(() => k.track(kept), /after close/);
});

test('a 401 refreshes the token once and repeats the request; the attempt does not count as failed', async () => {
  const [id] = await rig.createCalls(1);
  assert.ok(id);
  const real = rig.credential();
  let calls = 0;
  const { k, p } = await keeperViaProxy({
    credential: {
      async getToken(scopes) {
        calls += 1;
        // The first token is one Graph will refuse (a revoked or mangled token).
        if (calls === 1) return { token: 'not-a-jwt', expiresOnTimestamp: rig.clock.now() + HOUR };
        return real.getToken(scopes);
      },
    },
  });
  const failed = record(k, 'attemptFailed');
  const sent = record(k, 'sent');
  k.track(id);
  await rig.run(k, 16 * MINUTE, 5000);
  assert.equal(calls, 2);
  assert.deepEqual(
    p.keepAlivesOf(id).map((s) => s.status),
    [401, 200],
  );
  assert.equal(failed.length, 0);
  assert.equal(sent.length, 1);
});

test('a token Graph refuses even fresh is permanent: reported once, retried on the slow schedule, never past the last chance', async () => {
  const [id] = await rig.createCalls(1);
  assert.ok(id);
  let calls = 0;
  const { k, p } = await keeperViaProxy({
    getToken: async () => {
      calls += 1;
      return 'still-not-a-jwt';
    },
  });
  const failed = record(k, 'attemptFailed');
  const permanent = record(k, 'permanentError');
  const start = rig.clock.now();
  k.track(id, { lastKeepAliveAt: start - 15 * MINUTE });
  await rig.run(k, 40 * MINUTE, 1000);
  assert.ok(failed.length >= 4, `it retried (${failed.length})`);
  assert.ok(
    failed.every((f) => f.status === 401 && f.code === 'InvalidAuthenticationToken' && f.permanent === 'unauthorized'),
    'each failure is the 401 after a fresh token, classified',
  );
  assert.equal(permanent.length, 1, 'reported once');
  assert.equal(permanent[0]?.kind, 'unauthorized');
  assert.equal(p.keepAlivesOf(id).length, 2 * failed.length, 'two requests (original + after refresh) per attempt');
  assert.equal(calls, 2 * failed.length);
  // The slow schedule: 5 minutes (20% jitter) apart, except the one try at the last chance.
  const lastChance = start + 30 * MINUTE - 30_000;
  const times = failed.map((f) => f.sentAt);
  assert.ok(times.includes(lastChance), 'one try at the last chance');
  const slow = gaps(times.filter((t) => t !== lastChance));
  assert.ok(
    slow.every((g) => g >= 4 * MINUTE - 1000),
    `no fast retries: ${slow}`,
  );
});

test('a getToken function that caches (like the Graph client auth provider) is called per request and refreshed over hours', async () => {
  const [id] = await rig.createCalls(1);
  assert.ok(id);
  const credential = rig.credential();
  let cached: AccessTokenLike | undefined;
  let fetched = 0;
  // The shape of authProvider.getAccessToken(): a string, cached by the provider.
  const getAccessToken = async (): Promise<string> => {
    if (!cached || rig.clock.now() > cached.expiresOnTimestamp - MINUTE) {
      cached = (await credential.getToken('https://graph.microsoft.com/.default')) ?? undefined;
      fetched += 1;
    }
    assert.ok(cached);
    return cached.token;
  };
  const { k } = await keeperViaProxy({ getToken: () => getAccessToken() });
  const failed = record(k, 'attemptFailed');
  k.track(id);
  await rig.run(k, 4 * HOUR, 10_000);
  assert.equal(failed.length, 0);
  assert.ok(fetched >= 4, `tokens live 3599 s, so 4 hours need at least 4 (got ${fetched})`);
  assert.equal(await serverState(id), 'established');
});

test("the Graph client's auth provider hands the keeper its tokens (getToken: () => authProvider.getAccessToken())", async () => {
  const [id] = await rig.createCalls(1);
  assert.ok(id);
  const authProvider = new TokenCredentialAuthenticationProvider(rig.credential(), { scopes: ['https://graph.microsoft.com/.default'] });
  const { k, p } = await keeperViaProxy({ getToken: () => authProvider.getAccessToken() });
  const failed = record(k, 'attemptFailed');
  k.track(id);
  await rig.run(k, 2 * HOUR, 10_000);
  assert.equal(failed.length, 0);
  assert.equal(p.keepAlivesOf(id).length, 8);
  assert.equal(await serverState(id), 'established');
});

test('fetch instead of undici: global fetch keeps a call alive and reads the 404 that ends it', async () => {
  const [id] = await rig.createCalls(1);
  assert.ok(id);
  const { k } = await keeperViaProxy({ fetch: globalThis.fetch });
  const sent = record(k, 'sent');
  const ended = record(k, 'ended');
  k.track(id);
  await rig.run(k, HOUR, 10_000);
  assert.equal(sent.length, 4);
  await (await request(`${rig.base}/_callkeeper/calls/${id}/expire`, { method: 'POST' })).body.dump();
  await rig.run(k, 16 * MINUTE, 10_000);
  assert.deepEqual(
    ended.map((e) => [e.callId, e.code]),
    [[id, '8522']],
  );
});

test('a call that cannot be reached: retries aim at the deadline, atRisk and deadlineMissed fire once, then 404 ends it', async () => {
  const [doomed] = await rig.createCalls(1);
  assert.ok(doomed);
  let broken = true;
  fault = (path) =>
    broken && path.includes(doomed) ? { status: 500, body: '{"error":{"code":"InternalServerError","message":"x"}}' } : 'forward';
  const { k, p } = await keeperViaProxy();
  const failed: AttemptFailedEvent[] = record(k, 'attemptFailed');
  const atRisk = record(k, 'atRisk');
  const missed = record(k, 'deadlineMissed');
  const ended = record(k, 'ended');
  const t0 = rig.clock.now();
  const deadline = t0 + 45 * MINUTE;
  k.track(doomed);
  await rig.run(k, 60 * MINUTE, 1000);

  assert.equal(atRisk.length, 1, 'atRisk once');
  assert.ok((atRisk[0]?.at ?? 0) >= t0 + 30 * MINUTE && (atRisk[0]?.at ?? 0) <= t0 + 31 * MINUTE, 'about 30 minutes without success');
  assert.equal(missed.length, 1, 'deadlineMissed once');
  assert.equal(missed[0]?.deadline, deadline);
  const sends = p.keepAlivesOf(doomed).map((s) => s.at);
  assert.ok(
    sends.some((t) => t === deadline - 30_000),
    'a last-chance attempt exactly at deadline minus the safety margin',
  );
  assert.ok(
    sends.some((t) => t > deadline - 30_000 && t < deadline),
    'and a few more inside the margin',
  );
  assert.ok(
    gaps(sends).every((g) => g >= 500 && g <= 60_000),
    'never hammering, never idle for more than the backoff cap',
  );
  assert.equal(failed.at(-1)?.code, 'InternalServerError');
  assert.equal(ended.length, 0, 'a 500 is not an end');

  broken = false;
  await rig.run(k, 2 * MINUTE, 1000);
  assert.equal(ended.length, 1, 'the first answer after the fault is the 404');
  assert.equal(k.has(doomed), false);
});

test('Retry-After is honoured, in seconds and as an HTTP date, for that call; a 429 pauses the others too', async () => {
  const [a, b] = await rig.createCalls(2);
  assert.ok(a && b);
  const { k, p } = await keeperViaProxy();
  const sent = record(k, 'sent');
  k.track(a);
  k.track(b);
  await rig.run(k, 15 * MINUTE, 1000);
  assert.equal(sent.length, 2);
  const firstA = p.keepAlivesOf(a)[0]?.at ?? 0;
  const firstB = p.keepAlivesOf(b)[0]?.at ?? 0;
  const [early, late] = firstA < firstB ? [a, b] : [b, a];
  const gap = Math.abs(firstA - firstB);
  assert.ok(gap > 0, 'two distinct slots');

  // Next round: the earlier call gets a 429 asking for more than the gap between the two slots.
  const pause = Math.ceil(gap / 1000) + 120;
  let throttledAt: number | undefined;
  let n503 = 0;
  fault = (path, now): Verdict => {
    if (path.includes(early) && throttledAt === undefined) {
      throttledAt = now;
      return { status: 429, headers: { 'retry-after': String(pause) }, body: '{"error":{"code":"TooManyRequests","message":"x"}}' };
    }
    if (path.includes(late) && n503 === 0 && throttledAt !== undefined && now >= throttledAt + pause * 1000) {
      n503 += 1;
      // An HTTP date, read against the response's Date header (both on the virtual clock).
      return { status: 503, headers: { 'retry-after': new Date(now + 90_000).toUTCString(), date: new Date(now).toUTCString() } };
    }
    return 'forward';
  };
  const failed = record(k, 'attemptFailed');
  await rig.run(k, 20 * MINUTE, 1000);
  const throttled = p.keepAlivesOf(early).find((s) => s.status === 429)?.at;
  assert.ok(throttled !== undefined, 'the 429 was answered');
  const pausedUntil = throttled + pause * 1000;
  const afterThrottle = p.seen.filter((s) => s.at > throttled && s.callId !== undefined).map((s) => s.at);
  assert.ok(
    afterThrottle.every((t) => t >= pausedUntil),
    'nothing, for either call, inside the 429 pause',
  );
  const lateFault = p.keepAlivesOf(late).find((s) => s.status === 503);
  assert.ok(lateFault, 'the late call met its 503 after the pause');
  const lateNext = p.keepAlivesOf(late).find((s) => s.at > lateFault.at);
  assert.ok(lateNext && lateNext.at - lateFault.at >= 90_000, 'HTTP-date Retry-After: 90 s');
  assert.deepEqual(
    failed.map((f) => [f.status, f.retryAfterMs]),
    [
      [429, pause * 1000],
      [503, 90_000],
    ],
  );
  assert.equal(await serverState(a), 'established');
  assert.equal(await serverState(b), 'established');
});

test('lastKeepAliveAt: a call with little time left gets its first keepAlive in time', async () => {
  const [old] = await rig.createCalls(1);
  assert.ok(old);
  const createdAt = rig.clock.now();
  rig.clock.advance(40 * MINUTE);
  await rig.ck.scheduler.idle();
  const { k } = await keeperViaProxy();
  const sent: SentEvent[] = record(k, 'sent');
  k.track(old, { lastKeepAliveAt: createdAt });
  await rig.run(k, 20 * MINUTE, 1000);
  assert.ok((sent[0]?.sentAt ?? Number.POSITIVE_INFINITY) < createdAt + 45 * MINUTE, 'first keepAlive before the deadline');
  assert.equal(await serverState(old), 'established');
});
