/**
 * A 30-minute stretch in which Graph answers nothing but 503s, 429s (with Retry-After in
 * seconds and as an HTTP date) and dropped connections, put in front of a real callkeeper by
 * a proxy. 1,000 calls, one ManualClock for server, proxy and keeper: 30 minutes of normal
 * keeping (every call's last success before the outage is then 0 to 15 minutes old), the
 * outage, and 45 minutes after it (the backlog drains at twice the mean rate within 8 minutes,
 * every call is back on its slot by 23). Each scenario runs in a worker thread of its own
 * (keeper-harness.test.ts, inWorker), both at once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KeepAlive } from '../src/keeper/keep-alive.js';
import { FaultProxy, inWorker, MINUTE, perSecond, perWindow, type Rig, startRig, type Verdict, workerTask } from './keeper-harness.test.js';

const CALLS = 1000;
const TIMEOUT = 45 * MINUTE;
const MARGIN = 30_000;

/** A small deterministic PRNG, so the jitter (and thus the run) is the same every time. */
function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 48271) % 2147483647;
    return s / 2147483647;
  };
}

interface Fault {
  at: number;
  callId: string;
  status: number;
  retryAfterMs: number | undefined;
}

type FaultKind = '503' | '429' | '503-date' | 'reset';

const MIXES: Record<string, FaultKind[]> = {
  mixed: ['503', '429', '503-date', 'reset'],
  '503': ['503', 'reset', '503-date'],
};

if (!workerTask({ outage: (name: string) => outage(name, MIXES[name] ?? []) })) {
  describe('outage', { concurrency: 2 }, () => {
    test('30 minutes of 503/429/resets: every call whose deadline allowed it is saved, Retry-After is honoured, nothing is hammered', () =>
      inWorker(import.meta.url, 'outage', 'mixed'));

    test('30 minutes of 503s and resets only (no pause to lean on): the backlog is served deadline-first and no savable call is lost', () =>
      inWorker(import.meta.url, 'outage', '503'));
  });
}

async function outage(name: string, mix: FaultKind[]): Promise<void> {
  const rig = await startRig();
  try {
    await outageOn(rig, name, mix);
  } finally {
    await rig.close();
  }
}

async function outageOn(rig: Rig, name: string, mix: FaultKind[]): Promise<void> {
  const ids = await rig.createCalls(CALLS);
  const start = rig.clock.now();
  const outageFrom = start + 30 * MINUTE;
  const outageTo = outageFrom + 30 * MINUTE;
  const runEnd = outageTo + 45 * MINUTE;
  const faults: Fault[] = [];
  let n = 0;
  const decide = (path: string, now: number): Verdict => {
    const callId = /\/calls\/([^/]+)\/keepAlive$/.exec(path)?.[1];
    if (!callId || now < outageFrom || now >= outageTo) return 'forward';
    n += 1;
    const note = (status: number, retryAfterMs?: number) => faults.push({ at: now, callId, status, retryAfterMs });
    switch (mix[n % mix.length]) {
      case '503':
        note(503, 10_000);
        return { status: 503, headers: { 'retry-after': '10' }, body: '{"error":{"code":"ServiceUnavailable","message":"x"}}' };
      case '429':
        note(429, 60_000);
        return { status: 429, headers: { 'retry-after': '60' }, body: '{"error":{"code":"TooManyRequests","message":"x"}}' };
      case '503-date':
        note(503, 30_000);
        return {
          status: 503,
          headers: { 'retry-after': new Date(now + 30_000).toUTCString(), date: new Date(now).toUTCString() },
          body: '{"error":{"code":"ServiceUnavailable","message":"x"}}',
        };
      default:
        note(0);
        return 'reset';
    }
  };
  const proxy = await FaultProxy.start(rig.base, rig.clock, decide);
  const keeper = new KeepAlive({
    baseUrl: `${proxy.url}/v1.0`,
    credential: rig.credential(),
    clock: rig.clock,
    random: seeded(42),
    retry: { safetyMarginMs: MARGIN },
  });
  const hookRuns = new Map<string, number>();
  const missed = new Set<string>();
  keeper.on('deadlineMissed', (e) => missed.add(e.callId));
  try {
    for (const id of ids) keeper.track(id, { onEnded: () => void hookRuns.set(id, (hookRuns.get(id) ?? 0) + 1) });
    await rig.run(keeper, runEnd - start, 1000);
  } finally {
    await keeper.close();
    await proxy.close();
  }

  // Which calls could be saved: Graph's deadline is 45 minutes after the last success before the outage.
  const lastOkBefore = new Map<string, number>();
  for (const s of proxy.seen) if (s.callId && s.status === 200 && s.at < outageFrom) lastOkBefore.set(s.callId, s.at);
  assert.equal(lastOkBefore.size, CALLS, 'every call had a success before the outage');
  const deadlineOf = (id: string) => (lastOkBefore.get(id) ?? 0) + TIMEOUT;
  const savable = ids.filter((id) => deadlineOf(id) >= outageTo + 2000);
  assert.ok(savable.length >= CALLS - 5, `nearly all deadlines fall after the outage (${savable.length})`);

  const states = await Promise.all(ids.map(async (id) => [id, (await rig.ck.store.get(id))?.state] as const));
  const lost = states.filter(([id, state]) => state !== 'established' && savable.includes(id)).map(([id]) => id);
  assert.deepEqual(lost, [], 'no call that could be saved was lost');
  for (const [id, state] of states) {
    if (state === 'established') assert.equal(hookRuns.get(id), undefined, 'a live call never gets onEnded');
    else {
      assert.equal(hookRuns.get(id), 1, 'an ended call gets onEnded exactly once');
      assert.ok(missed.has(id), 'an ended call was reported deadlineMissed first');
    }
  }

  // Retry-After: a call's next request comes no sooner than it asked, unless the call's last chance came first.
  const byCall = new Map<string, number[]>();
  for (const s of proxy.seen) if (s.callId) byCall.set(s.callId, [...(byCall.get(s.callId) ?? []), s.at]);
  let honoured = 0;
  for (const f of faults) {
    if (f.retryAfterMs === undefined) continue;
    const next = byCall.get(f.callId)?.find((t) => t > f.at);
    if (next === undefined) continue;
    const lastChance = deadlineOf(f.callId) - MARGIN;
    assert.ok(
      next >= f.at + f.retryAfterMs || next >= lastChance,
      `call ${f.callId} retried ${next - f.at} ms after a Retry-After of ${f.retryAfterMs}`,
    );
    honoured += 1;
  }
  assert.ok(honoured > 100, `enough Retry-After answers were checked (${honoured})`);

  // A 429 pauses everyone: while a pause lasts, only calls whose last chance comes before its end go.
  // A request in the same virtual instant as a 429 may have left before or after the keeper read
  // that 429, so it counts toward urgency but does not start a pause for requests of that instant.
  const throttles = faults.filter((f) => f.status === 429);
  const pauseEnd = (t: number, inclusive: boolean) =>
    throttles.reduce(
      (end, f) => ((inclusive ? f.at <= t : f.at < t) ? Math.max(end, f.at + (f.retryAfterMs ?? 0)) : end),
      Number.NEGATIVE_INFINITY,
    );
  let checkedInPause = 0;
  for (const s of proxy.seen) {
    if (!s.callId || s.at >= outageTo || s.at >= pauseEnd(s.at, false)) continue;
    checkedInPause += 1;
    // 1 s of slack: the proxy stamps arrival at the end of the test's 1-second step.
    assert.ok(deadlineOf(s.callId) - MARGIN <= pauseEnd(s.at, true) + 1000, `call ${s.callId} went during a pause without being urgent`);
  }
  if (throttles.length > 0) assert.ok(checkedInPause > 0, 'some urgent calls did go during pauses');

  // Never hammering: the outage costs at most twice the normal request rate, minute by minute.
  const times = proxy.seen.filter((s) => s.callId).map((s) => s.at);
  const mean = CALLS / 15 / 60;
  const minutes = perWindow(times, start, runEnd, MINUTE);
  assert.ok(minutes.max <= 2 * mean * 60 + 2, `busiest minute ${minutes.max} requests vs ${2 * mean * 60} allowed`);
  const during = times.filter((t) => t >= outageFrom && t < outageTo).length;
  assert.ok(during <= 2 * mean * 30 * 60 + 2, `${during} requests during the outage`);

  // Recovery: no rush when Graph comes back, and half an hour later the spread is as even as before.
  const rush = perSecond(times, outageTo, outageTo + 10 * MINUTE);
  // The limiter's bound: twice the mean rate, plus one back-to-back pair (its burst).
  assert.ok(rush.max <= Math.floor(2 * mean) + 2, `busiest second after recovery: ${rush.max}`);
  const healed = perSecond(times, outageTo + 30 * MINUTE, runEnd);
  assert.ok(healed.max <= Math.max(2, 2 * healed.mean), `spread after recovery: max ${healed.max}, mean ${healed.mean.toFixed(2)}`);
  process.stdout.write(
    `# outage (${name}): ${savable.length} savable, ${CALLS - lost.length - (CALLS - savable.length)} saved; ${during} requests in 30 min of faults ` +
      `(${throttles.length} 429s); busiest minute ${minutes.max}, busiest second after recovery ${rush.max}\n`,
  );
}
