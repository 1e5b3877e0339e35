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

interface PendingAppend {
  entry: JournalEntry;
  keep: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface SqliteControlStoreOptions {
  /** Directory for control.db; omit for an in-memory database. */
  dataDir?: string;
  /** The wall clock the fault cache ages on (epoch ms); tests inject their own. */
  wallTime?: () => number;
}

/** How long (wall ms) cached fault rules are trusted without a re-read (see listFaults). */
export const FAULT_CACHE_MS = 1_000;

const liveAt = (rules: FaultRule[], now: number): FaultRule[] =>
  rules.length === 0 ? [] : rules.filter((r) => r.until === null || r.until > now);

/** Fault-rule versions by control.db path: every handle in this process on one file shares one. */
const faultVersions = new Map<string, { n: number; users: number }>();

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
  /** Journal entries of this turn of the event loop, written together (see appendRequest). */
  private journalQueue: PendingAppend[] = [];
  private readonly appendBatch: (batch: PendingAppend[]) => void;
  /** The live rules as last read, and the file's data_version then (see listFaults). */
  private faultCache: { rules: FaultRule[]; version: number; readAt: number } | undefined;
  /** Bumped by every fault write of any handle on this file in this process (see listFaults). */
  private readonly faultVersion: { n: number; users: number };
  private readonly wall: () => number;

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
    this.wall = options.wallTime ?? Date.now;
    let version = this.location === 'memory' ? undefined : faultVersions.get(this.location);
    if (!version) {
      version = { n: 0, users: 0 };
      if (this.location !== 'memory') faultVersions.set(this.location, version);
    }
    version.users++;
    this.faultVersion = version;
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
      liveFaults: db.prepare(`SELECT rule, remaining FROM faults WHERE remaining IS NULL OR remaining > 0 ORDER BY seq`),
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
    this.appendBatch = db.transaction((batch: PendingAppend[]) => {
      let keep = 0;
      for (const b of batch) {
        this.stmts.append.run(b.entry.callId, b.entry.appId, JSON.stringify(b.entry));
        keep = b.keep;
      }
      const before = this.appends;
      this.appends += batch.length;
      if (Math.floor(before / TRIM_EVERY) !== Math.floor(this.appends / TRIM_EVERY)) this.stmts.trim.run(keep);
    });
  }

  async addFault(rule: FaultRule): Promise<void> {
    this.stmts.addFault.run(rule.id, JSON.stringify(rule), rule.remaining, rule.until);
    this.faultsChanged();
  }

  /**
   * Asked on every Graph request and every delivery, nearly always with no rule armed, so the
   * live rules are kept as last read: a query (a read transaction) costs as much as the rest of
   * a keepAlive's hooks together. Any fault write by a handle on this file in this process
   * drops the copy at once; a write from another process (a data directory is single-writer,
   * so only a foreign tool would) shows at the next re-read, at most FAULT_CACHE_MS later
   * (docs/decisions.md, "Fault rules on SQLite, per request").
   */
  async listFaults(now: number): Promise<FaultRule[]> {
    const fresh = this.cachedFaults(now);
    if (fresh) return fresh;
    const rules = (this.stmts.liveFaults.all() as FaultRow[]).map((r) => ({
      ...(JSON.parse(r.rule) as FaultRule),
      remaining: r.remaining,
    }));
    this.faultCache = { rules, version: this.faultVersion.n, readAt: this.wall() };
    return liveAt(rules, now);
  }

  cachedFaults(now: number): FaultRule[] | undefined {
    const cached = this.faultCache;
    const wall = this.wall();
    if (!cached || cached.version !== this.faultVersion.n || wall - cached.readAt > FAULT_CACHE_MS || wall < cached.readAt)
      return undefined;
    return liveAt(cached.rules, now);
  }

  private faultsChanged(): void {
    this.faultVersion.n++;
    this.faultCache = undefined;
  }

  async removeFault(id: string): Promise<{ ok: true } | { ok: false; reason: 'notFound' }> {
    const removed = this.stmts.removeFault.run(id).changes > 0;
    this.faultsChanged();
    return removed ? { ok: true } : { ok: false, reason: 'notFound' };
  }

  async clearFaults(): Promise<number> {
    const n = this.stmts.clearFaults.run().changes;
    this.faultsChanged();
    return n;
  }

  async consumeFault(id: string, now: number): Promise<ConsumeResult> {
    const row = this.stmts.consume.get({ id, now }) as { remaining: number | null } | undefined;
    this.faultsChanged();
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

  /**
   * Appends arriving in one turn of the event loop (the responses of a burst of keepAlives) are
   * written as one transaction right after it (setImmediate): one commit for all of them, not
   * one more per request beside the request's own (docs/benchmarks.md). Each resolves once its
   * entry is committed; a list or clear on this handle writes what is queued first.
   */
  appendRequest(entry: JournalEntry, keep: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.journalQueue.push({ entry, keep, resolve, reject });
      if (this.journalQueue.length === 1) setImmediate(() => this.flushJournal());
    });
  }

  private flushJournal(): void {
    const batch = this.journalQueue;
    if (batch.length === 0) return;
    this.journalQueue = [];
    try {
      this.appendBatch(batch);
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    for (const b of batch) b.resolve();
  }

  async listRequests(q: JournalQuery): Promise<JournalEntry[]> {
    this.flushJournal();
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
    this.flushJournal();
    this.stmts.clearJournal.run();
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    this.flushJournal();
    this.db.close();
    if (--this.faultVersion.users === 0) faultVersions.delete(this.location);
  }
}
