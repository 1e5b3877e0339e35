import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { startServer, tempDir } from './helpers.js';

const mode = (p: string) => statSync(p).mode & 0o777;

test('the data directory is 0700 and callkeeper.db, its -wal and -shm (signing key, app secrets) are 0600, whatever the umask', async () => {
  const tmp = tempDir();
  const old = process.umask(0o022);
  try {
    const dataDir = join(tmp.path, 'data');
    const s = await startServer({ dataDir });
    try {
      await s.createCall();
      const reg = await fetch(`${s.base}/_callkeeper/apps`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ displayName: 'secret keeper' }),
      });
      assert.equal(reg.status, 201);
      const db = join(dataDir, 'callkeeper.db');
      assert.equal(mode(dataDir).toString(8), '700');
      for (const f of [db, `${db}-wal`, `${db}-shm`]) {
        assert.ok(existsSync(f), f);
        assert.equal(mode(f).toString(8), '600', f);
      }
    } finally {
      await s.close();
    }
  } finally {
    process.umask(old);
    tmp.remove();
  }
});

test('a data directory and database made wider by an older version are narrowed when callkeeper opens them', async () => {
  const tmp = tempDir();
  try {
    const dataDir = join(tmp.path, 'old');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    const db = join(dataDir, 'callkeeper.db');
    new Database(db).close();
    writeFileSync(`${db}-wal`, '');
    chmodSync(db, 0o644);
    chmodSync(`${db}-wal`, 0o644);
    const s = await startServer({ dataDir });
    try {
      assert.equal(mode(dataDir).toString(8), '700');
      assert.equal(mode(db).toString(8), '600');
      assert.equal(mode(`${db}-wal`).toString(8), '600');
    } finally {
      await s.close();
    }
  } finally {
    tmp.remove();
  }
});
