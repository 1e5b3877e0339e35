/**
 * Bumped when the schema changes incompatibly. Pre-release stores of another version are
 * refused with a clear message rather than migrated.
 */
export const SCHEMA_VERSION = 6;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS calls (
  rid INTEGER PRIMARY KEY,
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
  result_message TEXT,
  resource TEXT NOT NULL
);
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
  dead_reason TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_attempt_at) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_pending_by_call ON outbox(call_id, seq) WHERE status = 'pending';
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
