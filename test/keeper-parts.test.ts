/** The keeper's pure parts: heap, slots, rate, retry arithmetic, token cache. No network. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../src/clock/clock.js';
import { IndexedHeap } from '../src/keeper/indexed-heap.js';
import { backoffDelay, nextAttemptAt, parseRetryAfter, RETRY_DEFAULTS } from '../src/keeper/retry-policy.js';
import { SendRate } from '../src/keeper/send-rate.js';
import { SendSlots } from '../src/keeper/send-slots.js';
import { TokenSource } from '../src/keeper/token-source.js';

const MINUTE = 60_000;

/** Busiest whole second and mean per second, over [from, to). */
function perSecond(times: number[], from: number, to: number): { max: number; mean: number } {
  const bins = new Uint32Array(Math.ceil((to - from) / 1000));
  for (const t of times) {
    const i = Math.floor((t - from) / 1000);
    if (i >= 0 && i < bins.length) bins[i] = (bins[i] ?? 0) + 1;
  }
  return { max: Math.max(...bins), mean: times.length / bins.length };
}

test('IndexedHeap pops in key order and removes from the middle', () => {
  type Item = { k: number; heapIndex: number };
  const heap = new IndexedHeap<Item>((i) => i.k);
  let seed = 7;
  const rnd = () => {
    seed = (seed * 48271) % 2147483647;
    return seed / 2147483647;
  };
  const items: Item[] = Array.from({ length: 2000 }, () => ({ k: Math.floor(rnd() * 500), heapIndex: -1 }));
  for (const i of items) heap.push(i);
  const removed = new Set(items.filter((_, n) => n % 3 === 0));
  for (const i of removed) assert.equal(heap.remove(i), true);
  for (const i of removed) assert.equal(heap.remove(i), false);
  const out: number[] = [];
  for (let i = heap.pop(); i; i = heap.pop()) out.push(i.k);
  const expected = items
    .filter((i) => !removed.has(i))
    .map((i) => i.k)
    .sort((a, b) => a - b);
  assert.deepEqual(out, expected);
});

test('SendSlots: slots lie on the phase, strictly after the moment asked about', () => {
  const slots = new SendSlots(15 * MINUTE);
  const phase = 123_456;
  const t = Date.UTC(2026, 0, 1, 10, 7);
  const s = slots.slotAfter(phase, t);
  assert.ok(s > t && s <= t + 15 * MINUTE);
  assert.equal(s % (15 * MINUTE), phase);
  assert.equal(slots.slotAfter(phase, s), s + 15 * MINUTE, 'at the slot itself: the next one');
});

test('SendSlots: 10,000 phases fill the interval evenly (busiest second within 1.5x the mean), unlike random offsets', () => {
  const interval = 15 * MINUTE;
  const slots = new SendSlots(interval);
  const phases = Array.from({ length: 10_000 }, () => slots.nextPhase());
  const even = perSecond(phases, 0, interval);
  assert.ok(even.max <= 1.5 * even.mean, `golden-ratio phases: max ${even.max}, mean ${even.mean}`);
  // The same count placed at random: the reason the phases are not a hash of the call id.
  let seed = 11;
  const rnd = () => {
    seed = (seed * 48271) % 2147483647;
    return seed / 2147483647;
  };
  const random = perSecond(
    Array.from({ length: 10_000 }, () => rnd() * interval),
    0,
    interval,
  );
  assert.ok(random.max > 1.8 * random.mean, `random offsets clump: max ${random.max}, mean ${random.mean}`);
});

test('SendSlots: a call tracked late sends within what is left of its interval', () => {
  const slots = new SendSlots(15 * MINUTE);
  const now = 1_000_000_000;
  const first = slots.firstSend(14 * MINUTE, now, now - 10 * MINUTE);
  assert.ok(first >= now && first <= now + 5 * MINUTE);
  assert.equal(slots.firstSend(14 * MINUTE, now, now - 20 * MINUTE), now, 'overdue: now');
});

test('SendRate: batches per tick never exceed the limit, however big the backlog', () => {
  const tick = 1000;
  const rate = new SendRate(() => 10, tick);
  let now = 0;
  const sent: number[] = [];
  while (sent.length < 100) {
    // The keeper wakes on tick boundaries only.
    now = Math.ceil(rate.nextAt(now) / tick) * tick;
    rate.take(now);
    sent.push(now);
  }
  const r = perSecond(sent, 0, now + 1000);
  assert.equal(r.max, 10, 'the limit, per second');
  assert.equal(now, 9000, 'and no slower than the limit');
});

test('backoff doubles up to the cap and keeps half of itself fixed (jitter never shrinks it below half)', () => {
  const r = RETRY_DEFAULTS;
  assert.equal(
    backoffDelay(1, r, () => 0),
    500,
  );
  assert.equal(
    backoffDelay(1, r, () => 0.5),
    750,
  );
  assert.equal(
    backoffDelay(3, r, () => 0),
    2000,
  );
  assert.equal(
    backoffDelay(50, r, () => 0),
    30_000,
  );
  assert.equal(
    backoffDelay(50, r, () => 1),
    60_000,
  );
});

test('Retry-After: delta seconds, HTTP date against the Date header or the clock, garbage ignored', () => {
  const now = Date.UTC(2026, 0, 1, 12);
  assert.equal(parseRetryAfter('120', undefined, now), 120_000);
  assert.equal(parseRetryAfter(' 0 ', undefined, now), 0);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 12:01:30 GMT', undefined, now), 90_000);
  // The server's clock is 1 hour off ours: the Date header cancels the skew.
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 13:00:30 GMT', 'Thu, 01 Jan 2026 13:00:00 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 11:00:00 GMT', undefined, now), 0, 'a date in the past: now');
  assert.equal(parseRetryAfter('soon', undefined, now), undefined);
  assert.equal(parseRetryAfter(undefined, undefined, now), undefined);
});

test('nextAttemptAt: never skips the last chance, squeezes into the margin, then slows down past the deadline', () => {
  const r = RETRY_DEFAULTS;
  const deadline = 10 * MINUTE;
  assert.equal(nextAttemptAt(0, deadline, 5000, r), 5000, 'plenty of time: the delay');
  assert.equal(nextAttemptAt(9 * MINUTE, deadline, 5 * MINUTE, r), deadline - 30_000, 'a long Retry-After: the last chance instead');
  assert.equal(nextAttemptAt(deadline - 30_000, deadline, 60_000, r), deadline - 15_000, 'inside the margin: halve what is left');
  assert.equal(nextAttemptAt(deadline - 1500, deadline, 60_000, r), deadline - 1500 + 60_000, 'less than 2 gaps left: give up on it');
  assert.equal(nextAttemptAt(deadline + 1, deadline, 60_000, r), deadline + 1 + 60_000, 'past the deadline: the backoff pace');
});

test('TokenSource caches tokens with an expiry, refreshes ahead of it, shares a refresh, forgets a refused token', async () => {
  const clock = new ManualClock();
  let n = 0;
  let gate: Promise<void> = Promise.resolve();
  const source = new TokenSource(async () => {
    await gate;
    n += 1;
    return { token: `t${n}`, expiresOnTimestamp: clock.now() + 60 * MINUTE };
  }, clock);
  let open = () => {};
  gate = new Promise((r) => {
    open = r;
  });
  const many = Promise.all([source.get(), source.get(), source.get()]);
  open();
  assert.deepEqual(await many, ['t1', 't1', 't1'], 'one fetch for concurrent callers');
  clock.advance(54 * MINUTE);
  assert.equal(await source.get(), 't1', 'still fresh');
  clock.advance(2 * MINUTE);
  assert.equal(await source.get(), 't2', 'refreshed 5 minutes before expiry');
  source.invalidate('t1');
  assert.equal(await source.get(), 't2', 'invalidating an old token changes nothing');
  source.invalidate('t2');
  assert.equal(await source.get(), 't3');
});

test('TokenSource keeps a still-valid token when a refresh fails, and fails once it has expired', async () => {
  const clock = new ManualClock();
  let fail = false;
  const source = new TokenSource(async () => {
    if (fail) throw new Error('AAD is down');
    return { token: 'good', expiresOnTimestamp: clock.now() + 60 * MINUTE };
  }, clock);
  assert.equal(await source.get(), 'good');
  fail = true;
  clock.advance(58 * MINUTE);
  assert.equal(await source.get(), 'good');
  clock.advance(3 * MINUTE);
  await assert.rejects(source.get(), /AAD is down/);
});

test('TokenSource: a string-returning getToken is asked every time (it caches on its own)', async () => {
  const clock = new ManualClock();
  let n = 0;
  const source = new TokenSource(async () => `s${++n}`, clock);
  assert.equal(await source.get(), 's1');
  assert.equal(await source.get(), 's2');
});
