import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { ConsumeResult, FaultRule, FaultStore } from './fault-store.js';
import type { JournalEntry, JournalQuery, JournalStore } from './journal-store.js';
import type { ThrottleResult, ThrottleStore } from './throttle-store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS faults (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  rule TEXT NOT NULL,
  remaining INTEGER,
  until INTEGER
);
CREATE TABLE IF NOT EXISTS throttle (
  key TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (key, window_start)
);
CREATE TABLE IF NOT EXISTS journal (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  call_id TEXT,
  app_id TEXT,
  entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_by_call ON journal(call_id, seq) WHERE call_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS journal_by_app ON journal(app_id, seq) WHERE app_id IS NOT NULL;
`;

interface FaultRow {
  rule: string;
  remaining: number | null;
}

/** How many appends between trims of the journal (a trim is one indexed DELETE). */
const TRIM_EVERY = 100;

export interface SqliteControlStoreOptions {
  /** Directory for control.db; omit for an in-memory database. */
  dataDir?: string;
}

/**
 * Fault rules, throttle counters and the request journal in SQLite. They live in their own
 * file (control.db) beside the calls: the journal is written on every request and must not
 * contend with the calls' writes, and a reset empties it without touching the calls' schema.
 * Several handles on one file (processes sharing a data directory) see one state: every
 * conditional write is a single statement.
 */
export class SqliteControlStore implements FaultStore, ThrottleStore, JournalStore {
  readonly location: string;
  private readonly db: Database.Database;
  private readonly stmts;
  private appends = 0;

  constructor(options: SqliteControlStoreOptions = {}) {
    if (options.dataDir) {
      mkdirSync(options.dataDir, { recursive: true });
      this.location = resolve(join(options.dataDir, 'control.db'));
      this.db = new Database(this.location);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
    } else {
      this.location = 'memory';
      this.db = new Database(':memory:');
    }
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    const db = this.db;
    this.stmts = {
      addFault: db.prepare(
        `INSERT OR REPLACE INTO faults (id, seq, rule, remaining, until) VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM faults), ?, ?, ?)`,
      ),
      listFaults: db.prepare(
        `SELECT rule, remaining FROM faults WHERE (remaining IS NULL OR remaining > 0) AND (until IS NULL OR until > ?) ORDER BY seq`,
      ),
      removeFault: db.prepare(`DELETE FROM faults WHERE id = ?`),
      clearFaults: db.prepare(`DELETE FROM faults`),
      consume: db.prepare(
        `UPDATE faults SET remaining = remaining - 1
         WHERE id = :id AND (until IS NULL OR until > :now) AND (remaining IS NULL OR remaining > 0)
         RETURNING remaining`,
      ),
      faultState: db.prepare(`SELECT remaining, until FROM faults WHERE id = ?`),
      hit: db.prepare(
        `INSERT INTO throttle (key, window_start, count) VALUES (:key, :start, 1)
         ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1 WHERE count < :limit
         RETURNING count`,
      ),
      dropOldWindows: db.prepare(`DELETE FROM throttle WHERE key = ? AND window_start < ?`),
      clearThrottle: db.prepare(`DELETE FROM throttle`),
      append: db.prepare(`INSERT INTO journal (call_id, app_id, entry) VALUES (?, ?, ?)`),
      trim: db.prepare(`DELETE FROM journal WHERE seq <= (SELECT max(seq) FROM journal) - ?`),
      listAll: db.prepare(`SELECT entry FROM journal ORDER BY seq DESC LIMIT ?`),
      listByCall: db.prepare(`SELECT entry FROM journal WHERE call_id = ? ORDER BY seq DESC LIMIT ?`),
      listByApp: db.prepare(`SELECT entry FROM journal WHERE app_id = ? ORDER BY seq DESC LIMIT ?`),
      listByBoth: db.prepare(`SELECT entry FROM journal WHERE call_id = ? AND app_id = ? ORDER BY seq DESC LIMIT ?`),
      clearJournal: db.prepare(`DELETE FROM journal`),
    };
  }

  async addFault(rule: FaultRule): Promise<void> {
    this.stmts.addFault.run(rule.id, JSON.stringify(rule), rule.remaining, rule.until);
  }

  async listFaults(now: number): Promise<FaultRule[]> {
    return (this.stmts.listFaults.all(now) as FaultRow[]).map((r) => ({ ...(JSON.parse(r.rule) as FaultRule), remaining: r.remaining }));
  }

  async removeFault(id: string): Promise<{ ok: true } | { ok: false; reason: 'notFound' }> {
    return this.stmts.removeFault.run(id).changes > 0 ? { ok: true } : { ok: false, reason: 'notFound' };
  }

  async clearFaults(): Promise<number> {
    return this.stmts.clearFaults.run().changes;
  }

  async consumeFault(id: string, now: number): Promise<ConsumeResult> {
    const row = this.stmts.consume.get({ id, now }) as { remaining: number | null } | undefined;
    if (row) return { ok: true, remaining: row.remaining };
    const state = this.stmts.faultState.get(id) as { remaining: number | null; until: number | null } | undefined;
    if (!state) return { ok: false, reason: 'notFound' };
    return { ok: false, reason: state.until !== null && state.until <= now ? 'expired' : 'exhausted' };
  }

  async hitThrottle(key: string, now: number, windowMs: number, limit: number): Promise<ThrottleResult> {
    const start = now - (now % windowMs);
    const row = this.stmts.hit.get({ key, start, limit }) as { count: number } | undefined;
    if (row) {
      // The first request of a window clears the key's older windows: the table stays one row per key.
      if (row.count === 1) this.stmts.dropOldWindows.run(key, start);
      return { ok: true, count: row.count };
    }
    return { ok: false, reason: 'limited', retryAfterMs: start + windowMs - now };
  }

  async clearThrottle(): Promise<void> {
    this.stmts.clearThrottle.run();
  }

  async appendRequest(entry: JournalEntry, keep: number): Promise<void> {
    this.stmts.append.run(entry.callId, entry.appId, JSON.stringify(entry));
    if (++this.appends % TRIM_EVERY === 0) this.stmts.trim.run(keep);
  }

  async listRequests(q: JournalQuery): Promise<JournalEntry[]> {
    const rows = (
      q.callId !== undefined && q.appId !== undefined
        ? this.stmts.listByBoth.all(q.callId, q.appId, q.limit)
        : q.callId !== undefined
          ? this.stmts.listByCall.all(q.callId, q.limit)
          : q.appId !== undefined
            ? this.stmts.listByApp.all(q.appId, q.limit)
            : this.stmts.listAll.all(q.limit)
    ) as { entry: string }[];
    return rows.map((r) => JSON.parse(r.entry) as JournalEntry);
  }

  async clearRequests(): Promise<void> {
    this.stmts.clearJournal.run();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
