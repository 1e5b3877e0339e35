import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { GroupCommit } from '../src/store/sqlite-group-commit.js';
import { SqliteCallStore } from '../src/store/sqlite-store.js';
import { tempDir } from './helpers.js';

const OWNER = { appId: DEFAULT_APP.clientId, tenantId: DEFAULT_APP.tenantId };
const T0 = Date.UTC(2026, 5, 1);

test('keepAlives sent together share one commit, and none is answered before it is committed', async () => {
  const dir = tempDir();
  const store = new SqliteCallStore({ dataDir: dir.path });
  // A second connection sees only what is committed.
  const reader = new Database(join(dir.path, 'callkeeper.db'), { readonly: true });
  try {
    const ids = Array.from({ length: 50 }, (_, i) => `9c0f0000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    for (const id of ids)
      await store.create({
        id,
        owner: OWNER,
        state: 'established',
        direction: 'outgoing',
        createdAt: T0,
        deadline: T0 + 45 * 60_000,
        establishAt: null,
        resource: { callbackUri: 'http://127.0.0.1:9/cb' },
      });
    const kept = () => reader.prepare('SELECT count(*) FROM call_hot WHERE last_keepalive_at IS NOT NULL').pluck().get() as number;
    const before = { ...store.group.stats };
    const answered: boolean[] = [];
    const pending = ids.map((id) =>
      store.keepAlive(id, OWNER, T0 + 60_000, T0 + 46 * 60_000).then(({ ok }) => {
        // Every answer comes after the commit: by then the other connection sees all of them.
        assert.equal(kept(), ids.length, 'answered only once committed');
        answered.push(ok);
        return ok;
      }),
    );
    assert.equal(kept(), 0, 'nothing is written before the group commits');
    assert.deepEqual(
      await Promise.all(pending),
      ids.map(() => true),
    );
    assert.equal(answered.length, ids.length);
    assert.equal(store.group.stats.batches - before.batches, 1, 'one transaction for all 50');
    assert.equal(store.group.stats.writes - before.writes, ids.length);
    // A keepAlive for a call that is not there is a plain false, in the same kind of batch.
    assert.equal((await store.keepAlive('9c0f0000-0000-4000-8000-ffffffffffff', OWNER, T0 + 60_000, T0 + 46 * 60_000)).ok, false);
  } finally {
    reader.close();
    await store.close();
    dir.remove();
  }
});

test('a write that throws rolls back alone; a commit that fails rejects every write of its batch', async () => {
  const db = new Database(':memory:');
  try {
    db.pragma('foreign_keys = ON');
    db.exec(`CREATE TABLE parent (id INTEGER PRIMARY KEY);
      CREATE TABLE t (v TEXT UNIQUE, p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)`);
    const group = new GroupCommit(db);
    const insert = db.prepare('INSERT INTO t (v, p) VALUES (?, ?)');
    const results = await Promise.allSettled([
      group.run(() => insert.run('a', null).changes),
      group.run(() => {
        insert.run('b', null);
        insert.run('a', null); // duplicate: this work's own 'b' goes too
      }),
      group.run(() => insert.run('c', null).changes),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY v').pluck().all(), ['a', 'c']);

    // A deferred foreign key is checked at COMMIT: the whole batch fails, and says so to each caller.
    const failing = await Promise.allSettled([group.run(() => insert.run('d', null)), group.run(() => insert.run('e', 42))]);
    assert.deepEqual(
      failing.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    assert.match(String((failing[0] as PromiseRejectedResult).reason), /FOREIGN KEY/);
    assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY v').pluck().all(), ['a', 'c'], 'nothing of the failed batch stays');
  } finally {
    db.close();
  }
});

test('close() commits and answers what is queued', async () => {
  const dir = tempDir();
  const store = new SqliteCallStore({ dataDir: dir.path });
  try {
    const id = '9c0f0000-0000-4000-8000-000000000abc';
    await store.create({
      id,
      owner: OWNER,
      state: 'established',
      direction: 'outgoing',
      createdAt: T0,
      deadline: T0 + 45 * 60_000,
      establishAt: null,
      resource: {},
    });
    const kept = store.keepAlive(id, OWNER, T0 + 1_000, T0 + 46 * 60_000);
    await store.close();
    assert.equal((await kept).ok, true);
    const again = new SqliteCallStore({ dataDir: dir.path });
    assert.equal((await again.get(id))?.lastKeepAliveAt, T0 + 1_000);
    await again.close();
  } finally {
    dir.remove();
  }
});
