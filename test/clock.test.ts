import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock, ScaledClock } from '../src/clock/clock.js';
import { SharedClock } from '../src/clock/shared-clock.js';
import { SqliteStore } from '../src/store/sqlite-store.js';

describe('ManualClock', () => {
  test('fires due timers in time order, each seeing its own moment as now', () => {
    const c = new ManualClock(1000);
    const seen: [string, number][] = [];
    c.setTimer(1300, () => seen.push(['b', c.now()]));
    c.setTimer(1100, () => seen.push(['a', c.now()]));
    c.setTimer(5000, () => seen.push(['late', c.now()]));
    c.advance(500);
    assert.deepEqual(seen, [
      ['a', 1100],
      ['b', 1300],
    ]);
    assert.equal(c.now(), 1500);
  });

  test('a cancelled timer never fires; time cannot go backwards', () => {
    const c = new ManualClock(0);
    let fired = false;
    c.setTimer(10, () => {
      fired = true;
    }).cancel();
    c.advance(20);
    assert.equal(fired, false);
    assert.throws(() => c.advance(-1), RangeError);
  });
});

describe('ScaledClock', () => {
  test('virtual time runs scale times faster than the wall clock it is given', () => {
    let wall = 1_000_000;
    const c = new ScaledClock(60, () => wall);
    assert.equal(c.now(), 1_000_000);
    wall += 1000;
    assert.equal(c.now(), 1_000_000 + 60_000);
    c.advance(5000);
    assert.equal(c.now(), 1_000_000 + 65_000);
  });

  test('advance fires timers that became due, in order, and only those', () => {
    const wall = 0;
    const c = new ScaledClock(1, () => wall);
    const seen: string[] = [];
    const t1 = c.setTimer(3_600_000, () => seen.push('hour'));
    c.setTimer(60_000, () => seen.push('minute'));
    c.advance(120_000);
    assert.deepEqual(seen, ['minute']);
    t1.cancel();
    c.advance(3_600_000);
    assert.deepEqual(seen, ['minute']);
  });

  test('a timer fires on the real event loop once its virtual moment arrives', async () => {
    const c = new ScaledClock(1_000_000); // an hour of virtual time in 3.6 ms
    const due = c.now() + 3_600_000;
    const firedAt = await new Promise<number>((resolve) => c.setTimer(due, () => resolve(c.now())));
    assert.ok(firedAt >= due, 'never early');
  });

  test('refuses a scale that is not a positive number', () => {
    for (const s of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => new ScaledClock(s), RangeError);
  });
});

describe('SharedClock (virtual time kept in the store)', () => {
  test('two clocks on one store show one time; an advance on either fires timers on both at once', async () => {
    const store = new SqliteStore();
    let wall = 1_000_000;
    const a = await SharedClock.open(store, { scale: 60, wall: () => wall, startAt: Date.UTC(2026, 0, 1) });
    wall += 2_000;
    // Started 2 s later, with its own idea of the start: it takes the stored time.
    const b = await SharedClock.open(store, { scale: 60, wall: () => wall, startAt: Date.UTC(2030, 0, 1) });
    try {
      assert.equal(a.now(), b.now());
      assert.equal(a.now(), Date.UTC(2026, 0, 1) + 120_000);
      const fired: string[] = [];
      const at = a.now() + 45 * 60_000;
      a.setTimer(at, () => fired.push('a'));
      b.setTimer(at, () => fired.push('b'));
      await b.advance(45 * 60_000);
      assert.deepEqual(fired.sort(), ['a', 'b']);
      assert.equal(a.now(), b.now());
      await assert.rejects(a.advance(-1), RangeError);
    } finally {
      a.close();
      b.close();
      await store.close();
    }
  });

  test('a wall clock stepped back does not take virtual time back', async () => {
    const store = new SqliteStore();
    let wall = 5_000_000;
    const c = await SharedClock.open(store, { scale: 1, wall: () => wall });
    try {
      const before = c.now();
      wall -= 60_000;
      assert.equal(c.now(), before);
      const again = await SharedClock.open(store, { scale: 1, wall: () => wall });
      assert.ok(again.now() >= before, 'nor across a restart');
      again.close();
    } finally {
      c.close();
      await store.close();
    }
  });
});
