import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteCallStore } from '../src/store/sqlite-store.js';
import { tempDir } from './helpers.js';

// Issue 16 item 5: both outbox purges scanned the whole outbox on every due-work pass (create
// throughput fell from 750 to 275 req/s between 0 and 64,000 calls). The purge must read only
// what it deletes: SQLite's own query plan for it, on the store's real schema, says so.
test('the outbox purge reads finished entries through an index, never a scan of the outbox', async () => {
  const dir = tempDir();
  const store = new SqliteCallStore({ dataDir: dir.path });
  try {
    await store.counts(); // the schema exists once the store has opened
    const db = new Database(join(dir.path, 'callkeeper.db'), { readonly: true, fileMustExist: true });
    try {
      const plan = (sql: string) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(Date.now(), 100) as { detail: string }[]).map((r) => r.detail).join('; ');
      // The statement store/sqlite-store.ts runs to find what to purge (finishedBefore).
      const finished = plan(`SELECT seq FROM outbox WHERE status != 'pending' AND created_at <= ? ORDER BY created_at LIMIT ?`);
      assert.match(finished, /USING (COVERING )?INDEX outbox_finished/, finished);
      assert.doesNotMatch(finished, /SCAN outbox(?! USING)/, finished);
      // Each purged entry then goes by its key, and so do its attempts.
      const bySeq = (db.prepare('EXPLAIN QUERY PLAN DELETE FROM outbox WHERE seq = ?').all(1) as { detail: string }[])
        .map((r) => r.detail)
        .join('; ');
      assert.match(bySeq, /SEARCH outbox USING INTEGER PRIMARY KEY|SEARCH outbox USING (COVERING )?INDEX/, bySeq);
    } finally {
      db.close();
    }
  } finally {
    await store.close();
    dir.remove();
  }
});
