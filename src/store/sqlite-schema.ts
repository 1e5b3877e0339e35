/**
 * Bumped when the schema changes incompatibly. A store of an earlier version is migrated when
 * opened (version 7 by MIGRATE_FROM_7; version 6 first to 7, then on); stores of any other
 * version are refused with a clear message.
 *
 * 7: the call's resource JSON moved out of the hot row into call_resources, and an 'ended' fact
 * refers to its call's (final) resource there instead of copying it (outbox.resource_rid; its
 * snapshot then holds only what the row's columns do not: direction and state).
 * 8: what a keepAlive reads and writes (deadline, last keepAlive, an owner number) moved out of
 * calls into call_hot, a WITHOUT ROWID table keyed by call id; calls lost its id index.
 */
export const SCHEMA_VERSION = 8;

/**
 * call_hot is what a keepAlive reads and writes, and nothing else: the call id (its key), an owner
 * number (call_owners), the deadline and the last keepAlive, and the rid of the call's other rows.
 * About 60 bytes a call in one b-tree, so 1,000,000 calls are about 60 MB and stay in the page
 * cache: a keepAlive on a random call among a million reads no page from the OS and rewrites
 * one small page (version 7 read an id-index leaf and a 20-rows-a-page leaf of calls, both
 * mostly not cached). Its deadline is NULL once the call has ended; every call has a row until
 * it is purged, so lookups by id (live or ended) all go through it.
 *
 * calls holds the rest of a call's state: what sweeps, answers and ends read and write, about
 * 120 bytes a call, under rid. The resource JSON (about 850 bytes) lives apart in call_resources,
 * under the same rid, and is read only when a whole record is asked for. rid is AUTOINCREMENT:
 * an 'ended' fact may keep its call's resource after the call row is purged (see the purge in
 * sqlite-store.ts), so a rid is never handed to another call.
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS call_owners (owner INTEGER PRIMARY KEY, app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, UNIQUE (app_id, tenant_id));
CREATE TABLE IF NOT EXISTS call_hot (
  id TEXT PRIMARY KEY,
  owner INTEGER NOT NULL,
  deadline INTEGER,
  last_keepalive_at INTEGER,
  rid INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
  rid INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  app_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  state TEXT NOT NULL,
  direction TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  check_at INTEGER,
  establish_at INTEGER,
  ended_at INTEGER,
  result_code INTEGER,
  result_subcode INTEGER,
  result_message TEXT
);
CREATE TABLE IF NOT EXISTS call_resources (rid INTEGER PRIMARY KEY, resource TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS calls_by_check ON calls(check_at) WHERE check_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS calls_by_establish ON calls(establish_at) WHERE establish_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS calls_by_ended ON calls(ended_at) WHERE ended_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (seq INTEGER PRIMARY KEY, client_id TEXT NOT NULL UNIQUE, registration TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clock (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  wall_origin INTEGER NOT NULL,
  virtual_origin INTEGER NOT NULL,
  scale REAL NOT NULL,
  offset_ms INTEGER NOT NULL,
  floor INTEGER NOT NULL,
  version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_stats (id INTEGER PRIMARY KEY CHECK (id = 1), pending INTEGER NOT NULL, overflowed INTEGER NOT NULL);
INSERT OR IGNORE INTO outbox_stats (id, pending, overflowed) VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  call_id TEXT NOT NULL,
  app_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  callback_uri TEXT NOT NULL,
  transition TEXT NOT NULL,
  result TEXT,
  snapshot TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  last_status INTEGER,
  last_error TEXT,
  delivered_at INTEGER,
  lease INTEGER NOT NULL DEFAULT 0,
  dead_reason TEXT,
  resource_rid INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_attempt_at) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
-- A call's pending entries are found through outbox_by_call (a call has a handful of entries):
-- one index fewer to write per fact. Version 6 had this one.
DROP INDEX IF EXISTS outbox_pending_by_call;
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS outbox_finished ON outbox(created_at) WHERE status != 'pending';
CREATE INDEX IF NOT EXISTS outbox_by_call ON outbox(call_id, seq);
CREATE TABLE IF NOT EXISTS delivery_attempts (
  seq INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  at INTEGER NOT NULL,
  status_code INTEGER,
  latency_ms REAL NOT NULL,
  error TEXT,
  outcome TEXT NOT NULL,
  PRIMARY KEY (seq, attempt)
);
`;

/** The calls table as version 7 wrote it (the step of a version 6 store's migration to 7). */
const CALLS_V7 = `
CREATE TABLE calls (
  rid INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  app_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  state TEXT NOT NULL,
  direction TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_keepalive_at INTEGER,
  deadline INTEGER,
  check_at INTEGER,
  establish_at INTEGER,
  ended_at INTEGER,
  result_code INTEGER,
  result_subcode INTEGER,
  result_message TEXT
);
CREATE TABLE IF NOT EXISTS call_resources (rid INTEGER PRIMARY KEY, resource TEXT NOT NULL);
`;

/**
 * A version 6 store to version 7, in the migration's transaction: the calls table is rebuilt
 * without its resource column (the resources go to call_resources under the same rid), and the
 * outbox gains resource_rid (its existing entries keep their whole snapshots). The old calls
 * table's indexes are dropped first (version 8's are created on its own table); the bot-action
 * store's trigger on calls is dropped with them and created again by that store when it opens
 * (its SCHEMA). MIGRATE_FROM_7 follows.
 */
export const MIGRATE_FROM_6 = `
DROP TRIGGER IF EXISTS bot_actions_follow_calls;
DROP INDEX IF EXISTS calls_by_check;
DROP INDEX IF EXISTS calls_by_establish;
DROP INDEX IF EXISTS calls_by_ended;
ALTER TABLE calls RENAME TO calls_v6;
ALTER TABLE outbox ADD COLUMN resource_rid INTEGER;
${CALLS_V7}
INSERT INTO calls (rid, id, app_id, tenant_id, state, direction, created_at, last_keepalive_at, deadline, check_at,
  establish_at, ended_at, result_code, result_subcode, result_message)
SELECT rid, id, app_id, tenant_id, state, direction, created_at, last_keepalive_at, deadline, check_at,
  establish_at, ended_at, result_code, result_subcode, result_message FROM calls_v6 ORDER BY rid;
INSERT INTO call_resources (rid, resource) SELECT rid, resource FROM calls_v6 ORDER BY rid;
DROP TABLE calls_v6;
`;

/**
 * A version 7 store to version 8, in one transaction: the calls table is renamed, SCHEMA creates
 * version 8's tables and indexes, and MIGRATE_FROM_7_COPY moves the rows (deadline and last
 * keepAlive into call_hot, in key order) and carries calls' AUTOINCREMENT on (a purged call's rid
 * may still be referred to by a fact: the new table must not hand it out again). The trigger is
 * dropped as for version 6, and created again by the bot-action store.
 */
export const MIGRATE_FROM_7 = `
DROP TRIGGER IF EXISTS bot_actions_follow_calls;
DROP INDEX IF EXISTS calls_by_check;
DROP INDEX IF EXISTS calls_by_establish;
DROP INDEX IF EXISTS calls_by_ended;
ALTER TABLE calls RENAME TO calls_v7;
`;

export const MIGRATE_FROM_7_COPY = `
INSERT INTO calls (rid, id, app_id, tenant_id, state, direction, created_at, check_at, establish_at, ended_at,
  result_code, result_subcode, result_message)
SELECT rid, id, app_id, tenant_id, state, direction, created_at, check_at, establish_at, ended_at,
  result_code, result_subcode, result_message FROM calls_v7 ORDER BY rid;
INSERT OR IGNORE INTO call_owners (app_id, tenant_id) SELECT DISTINCT app_id, tenant_id FROM calls_v7;
INSERT INTO call_hot (id, owner, deadline, last_keepalive_at, rid)
SELECT c.id, o.owner, c.deadline, c.last_keepalive_at, c.rid
FROM calls_v7 c JOIN call_owners o ON o.app_id = c.app_id AND o.tenant_id = c.tenant_id ORDER BY c.id;
DELETE FROM sqlite_sequence WHERE name = 'calls';
INSERT INTO sqlite_sequence (name, seq) SELECT 'calls', seq FROM sqlite_sequence WHERE name = 'calls_v7';
DROP TABLE calls_v7;
`;
