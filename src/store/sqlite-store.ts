import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { CallOwner, CallRecord, CallState, ResultInfo } from '../calls/call-types.js';
import { type CallStore, DuplicateCallError, type ListPage, type ListQuery, type NewCall, type NextDue } from './call-store.js';

interface Row {
  rid: number;
  id: string;
  app_id: string;
  tenant_id: string;
  state: string;
  direction: string;
  created_at: number;
  last_keepalive_at: number | null;
  deadline: number | null;
  establish_at: number | null;
  ended_at: number | null;
  result_code: number | null;
  result_subcode: number | null;
  result_message: string | null;
  resource: string;
}

const SCHEMA = `
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
  establish_at INTEGER,
  ended_at INTEGER,
  result_code INTEGER,
  result_subcode INTEGER,
  result_message TEXT,
  resource TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_by_deadline ON calls(deadline) WHERE deadline IS NOT NULL;
CREATE INDEX IF NOT EXISTS calls_by_establish ON calls(establish_at) WHERE establish_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS calls_by_ended ON calls(ended_at) WHERE ended_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

const COLUMNS =
  'rid, id, app_id, tenant_id, state, direction, created_at, last_keepalive_at, deadline, establish_at, ended_at, result_code, result_subcode, result_message, resource';

function toRecord(r: Row): CallRecord {
  return {
    id: r.id,
    owner: { appId: r.app_id, tenantId: r.tenant_id },
    state: r.state as CallState,
    direction: r.direction as 'incoming' | 'outgoing',
    createdAt: r.created_at,
    lastKeepAliveAt: r.last_keepalive_at,
    deadline: r.deadline,
    establishAt: r.establish_at,
    endedAt: r.ended_at,
    resultInfo: r.result_code === null ? null : { code: r.result_code, subcode: r.result_subcode ?? 0, message: r.result_message ?? '' },
    resource: JSON.parse(r.resource) as Record<string, unknown>,
  };
}

export interface SqliteStoreOptions {
  /** Directory for callkeeper.db; omit for an in-memory database. */
  dataDir?: string;
}

/**
 * The embedded store. better-sqlite3 is synchronous; each method runs one statement or one
 * transaction and resolves after it committed. WAL with synchronous=NORMAL: a commit is in
 * the WAL file (the OS has it) before the method returns, so killing the process loses
 * nothing acknowledged; only a power loss could lose the last transactions.
 */
export class SqliteCallStore implements CallStore {
  readonly location: string;
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(options: SqliteStoreOptions = {}) {
    if (options.dataDir) {
      mkdirSync(options.dataDir, { recursive: true });
      this.location = resolve(join(options.dataDir, 'callkeeper.db'));
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
      insert: db.prepare(
        `INSERT INTO calls (id, app_id, tenant_id, state, direction, created_at, deadline, establish_at, resource)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      findLive: db.prepare(`SELECT ${COLUMNS} FROM calls WHERE id = ? AND app_id = ? AND tenant_id = ? AND deadline > ?`),
      get: db.prepare(`SELECT ${COLUMNS} FROM calls WHERE id = ?`),
      keepAlive: db.prepare(
        `UPDATE calls SET last_keepalive_at = ?, deadline = ?
         WHERE id = ? AND app_id = ? AND tenant_id = ? AND deadline > ?`,
      ),
      end: db.prepare(
        `UPDATE calls SET state = 'terminated', ended_at = ?, deadline = NULL, establish_at = NULL,
           result_code = ?, result_subcode = ?, result_message = ?
         WHERE id = ? AND deadline > ? RETURNING ${COLUMNS}`,
      ),
      endOwned: db.prepare(
        `UPDATE calls SET state = 'terminated', ended_at = ?, deadline = NULL, establish_at = NULL,
           result_code = ?, result_subcode = ?, result_message = ?
         WHERE id = ? AND app_id = ? AND tenant_id = ? AND deadline > ? RETURNING ${COLUMNS}`,
      ),
      // ended_at = deadline: SET reads the row's old values, so the end is stamped at the
      // deadline itself, however late the sweep runs.
      expireDue: db.prepare(
        `UPDATE calls SET state = 'terminated', ended_at = deadline, deadline = NULL, establish_at = NULL,
           result_code = ?, result_subcode = ?, result_message = ?
         WHERE rid IN (SELECT rid FROM calls WHERE deadline <= ? ORDER BY deadline LIMIT ?)
         RETURNING ${COLUMNS}`,
      ),
      establishDue: db.prepare(
        `UPDATE calls SET state = 'established', establish_at = NULL
         WHERE rid IN (SELECT rid FROM calls WHERE establish_at <= ? ORDER BY establish_at LIMIT ?)
         RETURNING ${COLUMNS}`,
      ),
      minDeadline: db.prepare('SELECT min(deadline) AS t FROM calls WHERE deadline IS NOT NULL').pluck(),
      minEstablish: db.prepare('SELECT min(establish_at) AS t FROM calls WHERE establish_at IS NOT NULL').pluck(),
      minEnded: db.prepare('SELECT min(ended_at) AS t FROM calls WHERE ended_at IS NOT NULL').pluck(),
      purge: db.prepare('DELETE FROM calls WHERE rid IN (SELECT rid FROM calls WHERE ended_at <= ? ORDER BY ended_at LIMIT ?)'),
      countActive: db.prepare('SELECT count(*) FROM calls WHERE deadline IS NOT NULL').pluck(),
      countEnded: db.prepare('SELECT count(*) FROM calls WHERE ended_at IS NOT NULL').pluck(),
      getSetting: db.prepare('SELECT value FROM settings WHERE key = ?').pluck(),
      initSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING'),
      putSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    };
  }

  async create(call: NewCall): Promise<void> {
    try {
      this.stmts.insert.run(
        call.id,
        call.owner.appId,
        call.owner.tenantId,
        call.state,
        call.direction,
        call.createdAt,
        call.deadline,
        call.establishAt,
        JSON.stringify(call.resource),
      );
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new DuplicateCallError(call.id);
      throw err;
    }
  }

  async findLive(id: string, owner: CallOwner, now: number): Promise<CallRecord | undefined> {
    const row = this.stmts.findLive.get(id, owner.appId, owner.tenantId, now) as Row | undefined;
    return row && toRecord(row);
  }

  async get(id: string): Promise<CallRecord | undefined> {
    const row = this.stmts.get.get(id) as Row | undefined;
    return row && toRecord(row);
  }

  async keepAlive(id: string, owner: CallOwner, now: number, deadline: number): Promise<boolean> {
    return this.stmts.keepAlive.run(now, deadline, id, owner.appId, owner.tenantId, now).changes === 1;
  }

  async end(id: string, owner: CallOwner | null, now: number, result: ResultInfo): Promise<CallRecord | undefined> {
    const r = [now, result.code, result.subcode, result.message, id] as const;
    const row = (owner ? this.stmts.endOwned.get(...r, owner.appId, owner.tenantId, now) : this.stmts.end.get(...r, now)) as
      | Row
      | undefined;
    return row && toRecord(row);
  }

  async expireDue(now: number, limit: number, result: ResultInfo): Promise<CallRecord[]> {
    const rows = this.stmts.expireDue.all(result.code, result.subcode, result.message, now, limit) as Row[];
    return rows.map(toRecord).sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0));
  }

  async establishDue(now: number, limit: number): Promise<CallRecord[]> {
    return (this.stmts.establishDue.all(now, limit) as Row[]).map(toRecord);
  }

  async nextDue(): Promise<NextDue> {
    const out: NextDue = {};
    const d = this.stmts.minDeadline.get() as number | null;
    const e = this.stmts.minEstablish.get() as number | null;
    const x = this.stmts.minEnded.get() as number | null;
    if (d !== null) out.deadline = d;
    if (e !== null) out.establishAt = e;
    if (x !== null) out.oldestEndedAt = x;
    return out;
  }

  async purgeEnded(before: number, limit: number): Promise<number> {
    return this.stmts.purge.run(before, limit).changes;
  }

  async list(q: ListQuery): Promise<ListPage> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.state === 'active') where.push('deadline IS NOT NULL');
    if (q.state === 'ended') where.push('ended_at IS NOT NULL');
    if (q.appId) {
      where.push('app_id = ?');
      args.push(q.appId);
    }
    const after = q.after === undefined ? 0 : Number.parseInt(q.after, 36);
    if (Number.isFinite(after) && after > 0) {
      where.push('rid > ?');
      args.push(after);
    }
    const sql = `SELECT ${COLUMNS} FROM calls ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY rid LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, q.limit + 1) as Row[];
    const page: ListPage = { calls: rows.slice(0, q.limit).map(toRecord) };
    const last = rows[q.limit - 1];
    if (rows.length > q.limit && last) page.next = last.rid.toString(36);
    return page;
  }

  async counts(): Promise<{ active: number; ended: number }> {
    return { active: this.stmts.countActive.get() as number, ended: this.stmts.countEnded.get() as number };
  }

  async getOrInitSetting(key: string, value: string): Promise<string> {
    this.stmts.initSetting.run(key, value);
    return this.stmts.getSetting.get(key) as string;
  }

  async putSetting(key: string, value: string): Promise<void> {
    this.stmts.putSetting.run(key, value);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
