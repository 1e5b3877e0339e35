import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { SqliteCallStore } from '../src/store/sqlite-store.js';

/** The id of the i-th seeded call (1-based): a well-formed GUID, derivable without a lookup. */
export function seededCallId(i: number): string {
  return `5eed0000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

export interface SeedSpec {
  dataDir: string;
  count: number;
  /** Where the calls' notifications go: the bench's loopback sink. */
  callbackUri: string;
  /** Virtual epoch ms the calls were created at. */
  createdAt: number;
  /** Deadline of the i-th call (1-based). */
  deadline: (i: number) => number;
}

/**
 * Writes `count` established calls of the dev app straight into callkeeper.db, in one
 * transaction: what CallService.create would have stored, much faster than a million POSTs.
 * The schema is the store's own (SqliteCallStore creates it).
 */
export async function seedCalls(spec: SeedSpec): Promise<{ seconds: number }> {
  const t0 = performance.now();
  // Let the store create its schema, then close it (and its checkpoint worker) completely:
  // with no other connection open, the journal can be switched off for the bulk insert.
  await new SqliteCallStore({ dataDir: spec.dataDir }).close();
  const db = new Database(join(spec.dataDir, 'callkeeper.db'));
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  // A call's three rows, as the store's create writes them (src/store/sqlite-schema.ts): calls,
  // call_hot (keyed by id: the seeded ids are in key order, so its pages fill up), the resource.
  const insert = db.prepare(
    `INSERT INTO calls (rid, id, app_id, tenant_id, state, direction, created_at, check_at, establish_at)
     VALUES (?, ?, ?, ?, 'established', 'outgoing', ?, ?, NULL)`,
  );
  db.prepare('INSERT INTO call_owners (app_id, tenant_id) VALUES (?, ?) ON CONFLICT DO NOTHING').run(
    DEFAULT_APP.clientId,
    DEFAULT_APP.tenantId,
  );
  const owner = db
    .prepare('SELECT owner FROM call_owners WHERE app_id = ? AND tenant_id = ?')
    .pluck()
    .get(DEFAULT_APP.clientId, DEFAULT_APP.tenantId) as number;
  const insertHot = db.prepare('INSERT INTO call_hot (id, owner, deadline, rid) VALUES (?, ?, ?, ?)');
  const insertResource = db.prepare('INSERT INTO call_resources (rid, resource) VALUES (?, ?)');
  const resourceHead = JSON.stringify({
    callbackUri: spec.callbackUri,
    requestedModalities: ['audio'],
    mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
    targets: [{ identity: { user: { id: 'u1' } } }],
    tenantId: DEFAULT_APP.tenantId,
  }).slice(0, -1);
  const source = JSON.stringify({
    '@odata.type': '#microsoft.graph.participantInfo',
    identity: {
      '@odata.type': '#microsoft.graph.identitySet',
      application: { '@odata.type': '#microsoft.graph.identity', displayName: DEFAULT_APP.displayName, id: DEFAULT_APP.clientId },
    },
  });
  db.transaction(() => {
    for (let i = 1; i <= spec.count; i++) {
      const resource = `${resourceHead},"myParticipantId":"${randomUUID()}","callChainId":"${randomUUID()}","source":${source}}`;
      // check_at starts at the deadline, as the store's own create does.
      insert.run(i, seededCallId(i), DEFAULT_APP.clientId, DEFAULT_APP.tenantId, spec.createdAt, spec.deadline(i));
      insertHot.run(seededCallId(i), owner, spec.deadline(i), i);
      insertResource.run(i, resource);
    }
  })();
  db.pragma('journal_mode = WAL');
  db.close();
  // Written with the journal and syncs off: put it on disk now, so the kernel's writeback of
  // the whole file (about 900 MB for 1,000,000 calls) does not run during the measurements.
  const fd = openSync(join(spec.dataDir, 'callkeeper.db'), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { seconds: (performance.now() - t0) / 1000 };
}

/** Bytes of callkeeper.db and of its WAL. */
export function storeBytes(dataDir: string): { db: number; wal: number; total: number } {
  const size = (f: string) => {
    try {
      return statSync(join(dataDir, f)).size;
    } catch {
      return 0;
    }
  };
  const db = size('callkeeper.db');
  const wal = size('callkeeper.db-wal');
  return { db, wal, total: db + wal };
}
