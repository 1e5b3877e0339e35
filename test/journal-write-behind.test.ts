/**
 * The request journal on SQLite is kept in memory and written behind to control.db
 * (journal/request-journal.ts): listed at once, costing a request no write, and still there
 * after a restart on the same data directory.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { RequestJournal } from '../src/journal/request-journal.js';
import type { JournalEntry, JournalQuery, JournalStore } from '../src/store/journal-store.js';
import { SqliteControlStore } from '../src/store/sqlite-control-store.js';
import { startServer, tempDir } from './helpers.js';

const dirs: { remove(): void }[] = [];
after(() => {
  for (const d of dirs) d.remove();
});
const dir = () => {
  const d = tempDir();
  dirs.push(d);
  return d.path;
};

interface Listed {
  value: { method: string; path: string; status: number; callId: string | null; requestId: string }[];
}

describe('request journal across a restart', () => {
  test("a restart on the same data directory lists the previous run's requests; after a reset they are gone for good", async () => {
    const dataDir = dir();
    const s = await startServer({ dataDir });
    let before: Listed;
    try {
      const id = await s.createCall();
      for (let i = 0; i < 3; i++)
        assert.equal((await s.graph(`/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST' })).status, 200);
      before = (await (await fetch(`${s.base}/_callkeeper/requests`)).json()) as Listed;
      assert.deepEqual(
        before.value.map((e) => [e.method, e.status, e.callId]),
        [
          ['POST', 200, id],
          ['POST', 200, id],
          ['POST', 200, id],
          ['POST', 201, null],
        ],
        'listed at once, newest first',
      );
    } finally {
      await s.close();
    }
    const again = await startServer({ dataDir });
    try {
      const after = (await (await fetch(`${again.base}/_callkeeper/requests`)).json()) as Listed;
      assert.deepEqual(after, before);
      assert.equal((await fetch(`${again.base}/_callkeeper/reset`, { method: 'POST' })).status, 200);
    } finally {
      await again.close();
    }
    const third = await startServer({ dataDir });
    try {
      assert.deepEqual(((await (await fetch(`${third.base}/_callkeeper/requests`)).json()) as Listed).value, []);
    } finally {
      await third.close();
    }
  });
});

/** A journal store that counts what reaches it, and can be told when `n` appends arrived. */
class Counting implements JournalStore {
  appends = 0;
  private waiters: { n: number; resolve: () => void }[] = [];
  constructor(readonly inner: SqliteControlStore) {}
  async appendRequest(entry: JournalEntry, keep: number): Promise<void> {
    await this.inner.appendRequest(entry, keep);
    this.appends++;
    for (const w of this.waiters.filter((x) => this.appends >= x.n)) w.resolve();
  }
  listRequests(q: JournalQuery) {
    return this.inner.listRequests(q);
  }
  clearRequests() {
    return this.inner.clearRequests();
  }
  /**
   * The journal's save timer is unref'd (it must not hold a server's process open), so while a
   * test waits for it something else has to keep the event loop alive: a ref'd timer that also
   * fails the wait if the save never comes.
   */
  reached(n: number): Promise<void> {
    if (this.appends >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`only ${this.appends} of ${n} appends arrived`)), 30_000);
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(guard);
          resolve();
        },
      });
    });
  }
}

const entry = (i: number): JournalEntry => ({
  at: Date.UTC(2026, 0, 1) + i,
  method: 'POST',
  path: `/v1.0/communications/calls/c${i % 7}/keepAlive`,
  status: 200,
  latencyMs: 1,
  appId: i % 2 ? 'odd' : 'even',
  callId: `c${i % 7}`,
  requestId: `r${i}`,
  clientRequestId: `r${i}`,
  fault: null,
});

describe('request journal kept in memory, written behind', () => {
  test('of 5,000 requests between two saves only the newest 1,000 are written; a reopened store lists them alike', async () => {
    const path = dir();
    const store = new Counting(new SqliteControlStore({ dataDir: path }));
    const journal = new RequestJournal(store, 1_000, { local: true, saveEveryMs: 3_600_000 });
    for (let i = 0; i < 5_000; i++) await journal.record(entry(i));
    assert.equal(store.appends, 0, 'recording writes nothing');
    const newest = await journal.list({});
    assert.equal(newest.length, 1_000);
    assert.deepEqual(
      newest.slice(0, 3).map((e) => e.requestId),
      ['r4999', 'r4998', 'r4997'],
    );
    const mine = await journal.list({ callId: 'c3', appId: 'odd', limit: 5 });
    assert.deepEqual(
      mine.map((e) => e.requestId),
      newest
        .filter((e) => e.callId === 'c3' && e.appId === 'odd')
        .slice(0, 5)
        .map((e) => e.requestId),
    );
    assert.equal(mine.length, 5);
    await journal.flush();
    assert.equal(store.appends, 1_000, 'only the newest 1,000 reach the store');
    await store.inner.close();

    const reopened = new SqliteControlStore({ dataDir: path });
    try {
      const next = new RequestJournal(reopened, 1_000, { local: true });
      await next.load();
      assert.deepEqual(await next.list({}), newest);
    } finally {
      await reopened.close();
    }
  });

  test('new entries are written on the save timer, and a clear keeps them from being written after it', async () => {
    const store = new Counting(new SqliteControlStore({ dataDir: dir() }));
    try {
      const journal = new RequestJournal(store, 100, { local: true, saveEveryMs: 200 });
      for (let i = 0; i < 10; i++) await journal.record(entry(i));
      await store.reached(10);
      assert.deepEqual(
        (await store.inner.listRequests({ limit: 100 })).map((e) => e.requestId),
        Array.from({ length: 10 }, (_, i) => `r${9 - i}`),
      );
      for (let i = 10; i < 20; i++) await journal.record(entry(i));
      await journal.clear();
      await journal.flush();
      assert.deepEqual(await journal.list({}), []);
      assert.deepEqual(await store.inner.listRequests({ limit: 100 }), []);
    } finally {
      await store.inner.close();
    }
  });
});
