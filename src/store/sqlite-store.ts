import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { type CallNotification, notificationsFor } from '../calls/call-notifications.js';
import type { CallOwner, CallRecord, CallState, ResultInfo } from '../calls/call-types.js';
import {
  type Answer,
  type CallStore,
  type DeliveryAttempt,
  type DeliveryOutcome,
  type DeliveryQuery,
  DuplicateCallError,
  type ExpiryResults,
  type ListPage,
  type ListQuery,
  type NewCall,
  type NextDue,
  type OutboxEntry,
} from './call-store.js';
import { ensurePrivateFile, preparePrivateDataDir, privateDatabaseFiles } from './private-files.js';
import { SqliteCheckpointer } from './sqlite-checkpointer.js';

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

interface OutboxRow {
  seq: number;
  call_id: string;
  app_id: string;
  tenant_id: string;
  callback_uri: string;
  change_type: string;
  resource_data: string;
  resource_path: string;
  created_at: number;
  status: string;
  attempts: number;
  next_attempt_at: number | null;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
}

interface AttemptRow {
  seq: number;
  attempt: number;
  at: number;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
  outcome: string;
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
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  call_id TEXT NOT NULL,
  app_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  callback_uri TEXT NOT NULL,
  change_type TEXT NOT NULL,
  resource_data TEXT NOT NULL,
  resource_path TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  last_status INTEGER,
  last_error TEXT,
  delivered_at INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_attempt_at) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_pending_by_call ON outbox(call_id, seq) WHERE status = 'pending';
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

/** Largest WAL (bytes) before the writer completes a checkpoint itself. */
const WAL_LIMIT = 64 * 1024 * 1024;

const COLUMNS =
  'rid, id, app_id, tenant_id, state, direction, created_at, last_keepalive_at, deadline, establish_at, ended_at, result_code, result_subcode, result_message, resource';
const END_SET = `state = 'terminated', deadline = NULL, check_at = NULL, establish_at = NULL`;

/**
 * Bumped when the schema changes incompatibly. Pre-release stores of another version are
 * refused with a clear message rather than migrated.
 */
const SCHEMA_VERSION = 5;

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

function toEntry(r: OutboxRow): OutboxEntry {
  const data = JSON.parse(r.resource_data) as Record<string, unknown> | Record<string, unknown>[];
  const notification: CallNotification = Array.isArray(data)
    ? { changeType: r.change_type as CallNotification['changeType'], resourceData: {}, resourceList: data }
    : { changeType: r.change_type as CallNotification['changeType'], resourceData: data };
  if (r.resource_path) notification.resourcePath = r.resource_path;
  return {
    seq: r.seq,
    callId: r.call_id,
    owner: { appId: r.app_id, tenantId: r.tenant_id },
    callbackUri: r.callback_uri,
    notification,
    createdAt: r.created_at,
    status: r.status as OutboxEntry['status'],
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at ?? r.created_at,
    lastStatusCode: r.last_status,
    lastError: r.last_error,
    deliveredAt: r.delivered_at,
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
  private readonly tx;
  private readonly enqueueAll: (call: Pick<CallRecord, 'id' | 'owner' | 'resource'>, notifications: CallNotification[], at: number) => void;
  private readonly checkpointer: SqliteCheckpointer | undefined;
  private walPath: string | undefined;
  private writes = 0;

  constructor(options: SqliteStoreOptions = {}) {
    if (options.dataDir) {
      // It holds the signing key and app secrets: 0700 directory, 0600 files (docs/security.md).
      preparePrivateDataDir(options.dataDir);
      this.location = resolve(join(options.dataDir, 'callkeeper.db'));
      ensurePrivateFile(this.location);
      this.db = new Database(this.location);
      this.db.pragma('journal_mode = WAL');
      // SQLite gives -wal and -shm the database file's mode; an older, wider pair is narrowed.
      privateDatabaseFiles(this.location);
      this.db.pragma('synchronous = NORMAL');
      // Checkpoints happen in a worker (sqlite-checkpointer.ts), never inside a request's commit.
      this.db.pragma('wal_autocheckpoint = 0');
      // Hot pages (the id and deadline indexes) stay in memory with a million calls on disk.
      this.db.pragma('cache_size = -65536');
      this.checkpointer = new SqliteCheckpointer(this.location);
      this.walPath = `${this.location}-wal`;
    } else {
      this.location = 'memory';
      this.db = new Database(':memory:');
    }
    this.db.pragma('busy_timeout = 5000');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    const fresh = this.db.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'calls'`).pluck().get() === 0;
    if (!fresh && version !== SCHEMA_VERSION) {
      this.db.close();
      throw new Error(
        `${this.location} was written by another version of callkeeper (schema ${version}, this one reads ${SCHEMA_VERSION}); start with an empty --data directory`,
      );
    }
    this.db.exec(SCHEMA);
    this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    const db = this.db;
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO calls (id, app_id, tenant_id, state, direction, created_at, deadline, check_at, establish_at, resource)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      findLive: db.prepare(`SELECT ${COLUMNS} FROM calls WHERE id = ? AND app_id = ? AND tenant_id = ? AND deadline > ?`),
      get: db.prepare(`SELECT ${COLUMNS} FROM calls WHERE id = ?`),
      keepAlive: db.prepare(
        `UPDATE calls SET last_keepalive_at = ?, deadline = ?
         WHERE id = ? AND app_id = ? AND tenant_id = ? AND deadline > ?`,
      ),
      end: db.prepare(
        `UPDATE calls SET ${END_SET}, ended_at = :now, result_code = :code, result_subcode = :subcode, result_message = :message
         WHERE id = :id AND deadline > :now AND (:appId IS NULL OR (app_id = :appId AND tenant_id = :tenantId))
           AND (:onlyState IS NULL OR state = :onlyState)
         RETURNING ${COLUMNS}`,
      ),
      answer: db.prepare(
        `UPDATE calls SET state = 'establishing', deadline = :deadline, check_at = :deadline, establish_at = :establishAt, resource = json_patch(resource, :patch)
         WHERE id = :id AND app_id = :appId AND tenant_id = :tenantId AND deadline > :now AND state = 'incoming'
         RETURNING ${COLUMNS}`,
      ),
      // ended_at = deadline: SET reads the row's old values, so the end is stamped at the
      // deadline itself, however late the sweep runs; likewise the CASE sees the old state.
      expireDue: db.prepare(
        `UPDATE calls SET ${END_SET}, ended_at = deadline,
           result_code = CASE WHEN state = 'incoming' THEN :uCode ELSE :kCode END,
           result_subcode = CASE WHEN state = 'incoming' THEN :uSubcode ELSE :kSubcode END,
           result_message = CASE WHEN state = 'incoming' THEN :uMessage ELSE :kMessage END
         WHERE rid IN (SELECT rid FROM calls WHERE check_at <= :now AND deadline <= :now ORDER BY check_at LIMIT :limit)
         RETURNING ${COLUMNS}`,
      ),
      // The deadline itself is not indexed: a keepAlive moves it on every call, and an index on
      // it would cost two index-page writes per keepAlive. check_at is indexed instead and moves
      // only here, when a sweep finds a call whose check came but whose deadline was pushed on.
      recheck: db.prepare(
        `UPDATE calls SET check_at = deadline
         WHERE rid IN (SELECT rid FROM calls WHERE check_at <= :now AND deadline > :now LIMIT :limit)`,
      ),
      establishDue: db.prepare(
        `UPDATE calls SET state = 'established', establish_at = NULL
         WHERE rid IN (SELECT rid FROM calls WHERE establish_at <= ? ORDER BY establish_at LIMIT ?)
         RETURNING ${COLUMNS}`,
      ),
      minDeadline: db.prepare('SELECT min(check_at) AS t FROM calls WHERE check_at IS NOT NULL').pluck(),
      minEstablish: db.prepare('SELECT min(establish_at) AS t FROM calls WHERE establish_at IS NOT NULL').pluck(),
      minEnded: db.prepare('SELECT min(ended_at) AS t FROM calls WHERE ended_at IS NOT NULL').pluck(),
      purge: db.prepare('DELETE FROM calls WHERE rid IN (SELECT rid FROM calls WHERE ended_at <= ? ORDER BY ended_at LIMIT ?)'),
      purgeAttempts: db.prepare(
        `DELETE FROM delivery_attempts WHERE seq IN (SELECT seq FROM outbox WHERE status != 'pending' AND created_at <= ? LIMIT ?)`,
      ),
      purgeOutbox: db.prepare(
        `DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE status != 'pending' AND created_at <= ? LIMIT ?)`,
      ),
      countActive: db.prepare('SELECT count(*) FROM calls WHERE check_at IS NOT NULL').pluck(),
      countEnded: db.prepare('SELECT count(*) FROM calls WHERE ended_at IS NOT NULL').pluck(),
      outboxDepth: db.prepare(`SELECT count(*) FROM outbox WHERE status = 'pending'`).pluck(),
      getSetting: db.prepare('SELECT value FROM settings WHERE key = ?').pluck(),
      initSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING'),
      putSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      // Only the head of a call's line (its oldest pending notification) has a next_attempt_at;
      // the rest wait with NULL until it is done. So "what is due" is one index range scan.
      hasPending: db.prepare(`SELECT 1 FROM outbox WHERE call_id = ? AND status = 'pending' LIMIT 1`).pluck(),
      enqueue: db.prepare(
        `INSERT INTO outbox (call_id, app_id, tenant_id, callback_uri, change_type, resource_data, resource_path, created_at, next_attempt_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      claimable: db.prepare(
        `SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at IS NOT NULL AND next_attempt_at <= :now
         ORDER BY next_attempt_at, seq LIMIT :limit`,
      ),
      // A lease is a postponement: the entry is not due again until the claimer's time is up.
      lease: db.prepare('UPDATE outbox SET next_attempt_at = ? WHERE seq = ?'),
      finish: db.prepare(
        `UPDATE outbox SET status = :status, attempts = attempts + 1, next_attempt_at = :next,
           last_status = :statusCode, last_error = :error, delivered_at = :deliveredAt
         WHERE seq = :seq RETURNING call_id`,
      ),
      promote: db.prepare(
        `UPDATE outbox SET next_attempt_at = :now
         WHERE seq = (SELECT min(seq) FROM outbox WHERE call_id = :callId AND status = 'pending') AND next_attempt_at IS NULL`,
      ),
      recordAttempt: db.prepare(
        'INSERT OR REPLACE INTO delivery_attempts (seq, attempt, at, status_code, latency_ms, error, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      nextDelivery: db.prepare(`SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending' AND next_attempt_at IS NOT NULL`).pluck(),
      attemptsOf: db.prepare('SELECT * FROM delivery_attempts WHERE seq = ? ORDER BY attempt'),
    };
    const enqueueAll = (call: Pick<CallRecord, 'id' | 'owner' | 'resource'>, notifications: CallNotification[], at: number) => {
      const callbackUri = typeof call.resource.callbackUri === 'string' ? call.resource.callbackUri : '';
      let head = this.stmts.hasPending.get(call.id) === undefined;
      for (const n of notifications) {
        const due = head ? at : null;
        head = false;
        this.stmts.enqueue.run(
          call.id,
          call.owner.appId,
          call.owner.tenantId,
          callbackUri,
          n.changeType,
          JSON.stringify(n.resourceList ?? n.resourceData),
          n.resourcePath ?? '',
          at,
          due,
        );
      }
    };
    this.enqueueAll = enqueueAll;
    this.tx = {
      create: db.transaction((call: NewCall) => {
        this.stmts.insert.run(
          call.id,
          call.owner.appId,
          call.owner.tenantId,
          call.state,
          call.direction,
          call.createdAt,
          call.deadline,
          call.deadline,
          call.establishAt,
          JSON.stringify(call.resource),
        );
        const record: CallRecord = { ...call, lastKeepAliveAt: null, endedAt: null, resultInfo: null };
        enqueueAll(record, notificationsFor.created(record), call.createdAt);
      }),
      end: db.transaction((params: Record<string, string | number | null>, now: number, result: ResultInfo) => {
        const row = this.stmts.end.get(params) as Row | undefined;
        if (!row) return undefined;
        const call = toRecord(row);
        enqueueAll(call, notificationsFor.ended(call, result), now);
        return call;
      }),
      answer: db.transaction((params: Record<string, string | number>, now: number) => {
        const row = this.stmts.answer.get(params) as Row | undefined;
        if (!row) return undefined;
        const call = toRecord(row);
        enqueueAll(call, notificationsFor.answered(call), now);
        return call;
      }),
      expireDue: db.transaction((params: Record<string, string | number>) => {
        while (this.stmts.recheck.run({ now: params.now, limit: 10_000 }).changes === 10_000);
        const calls = (this.stmts.expireDue.all(params) as Row[]).map(toRecord).sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0));
        for (const c of calls)
          enqueueAll(c, notificationsFor.ended(c, c.resultInfo ?? { code: 0, subcode: 0, message: '' }), c.endedAt ?? 0);
        return calls;
      }),
      establishDue: db.transaction((now: number, limit: number) => {
        const calls = (this.stmts.establishDue.all(now, limit) as Row[]).map(toRecord);
        for (const c of calls) enqueueAll(c, notificationsFor.established(c), now);
        return calls;
      }),
      claim: db.transaction((now: number, limit: number, leaseUntil: number) => {
        const rows = this.stmts.claimable.all({ now, limit }) as OutboxRow[];
        for (const r of rows) this.stmts.lease.run(leaseUntil, r.seq);
        return rows.map(toEntry);
      }),
      finish: db.transaction((seq: number, a: DeliveryAttempt, outcome: DeliveryOutcome) => {
        this.stmts.recordAttempt.run(seq, a.attempt, a.at, a.statusCode, a.latencyMs, a.error, a.outcome);
        const done = this.stmts.finish.get({
          seq,
          status: outcome.status,
          next: outcome.status === 'pending' ? outcome.nextAttemptAt : null,
          statusCode: a.statusCode,
          error: a.error,
          deliveredAt: outcome.status === 'delivered' ? a.at : null,
        }) as { call_id: string } | undefined;
        // Its call's next notification, if any, is now at the head of the line.
        if (done && outcome.status !== 'pending') this.stmts.promote.run({ now: a.at, callId: done.call_id });
      }),
      purge: db.transaction((before: number, limit: number) => {
        this.stmts.purgeAttempts.run(before, limit);
        this.stmts.purgeOutbox.run(before, limit);
        return this.stmts.purge.run(before, limit).changes;
      }),
    };
  }

  /**
   * The database, for stores of other concerns that keep their tables in the same file so that
   * their changes and the notifications they queue commit in one transaction
   * (store/sqlite-bot-action-store.ts).
   */
  get database(): Database.Database {
    return this.db;
  }

  /**
   * Queues notifications for a call behind those already pending for it; synchronous, so a
   * caller inside a transaction on `database` commits them with its own change.
   */
  enqueueWithin(call: Pick<CallRecord, 'id' | 'owner' | 'resource'>, notifications: CallNotification[], at: number): void {
    this.enqueueAll(call, notifications, at);
  }

  async create(call: NewCall): Promise<void> {
    try {
      this.tx.create(call);
      this.wrote();
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
    const ok = this.stmts.keepAlive.run(now, deadline, id, owner.appId, owner.tenantId, now).changes === 1;
    this.wrote();
    return ok;
  }

  /**
   * The worker's PASSIVE checkpoints never catch up with a writer that never pauses, so the WAL
   * would grow without end. Every few hundred writes the writer looks at its size; past
   * WAL_LIMIT it runs a TRUNCATE checkpoint itself (short: the worker has copied most pages),
   * which restarts the WAL and shrinks the file: one brief stall per WAL_LIMIT of writes.
   */
  private wrote(): void {
    if (!this.walPath || ++this.writes % 512 !== 0) return;
    try {
      if ((statSync(this.walPath, { throwIfNoEntry: false })?.size ?? 0) > WAL_LIMIT) this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // Busy: the next look tries again.
    }
  }

  async end(id: string, owner: CallOwner | null, now: number, result: ResultInfo, onlyState?: CallState): Promise<CallRecord | undefined> {
    return this.tx.end(
      {
        id,
        now,
        code: result.code,
        subcode: result.subcode,
        message: result.message,
        appId: owner?.appId ?? null,
        tenantId: owner?.tenantId ?? null,
        onlyState: onlyState ?? null,
      },
      now,
      result,
    );
  }

  async answer(id: string, owner: CallOwner, now: number, answer: Answer): Promise<CallRecord | undefined> {
    return this.tx.answer(
      {
        id,
        now,
        appId: owner.appId,
        tenantId: owner.tenantId,
        deadline: answer.deadline,
        establishAt: answer.establishAt,
        patch: JSON.stringify(answer.resource),
      },
      now,
    );
  }

  async expireDue(now: number, limit: number, results: ExpiryResults): Promise<CallRecord[]> {
    const { keepAlive: k, unanswered: u } = results;
    return this.tx.expireDue({
      now,
      limit,
      kCode: k.code,
      kSubcode: k.subcode,
      kMessage: k.message,
      uCode: u.code,
      uSubcode: u.subcode,
      uMessage: u.message,
    });
  }

  async establishDue(now: number, limit: number): Promise<CallRecord[]> {
    this.wrote();
    return this.tx.establishDue(now, limit);
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
    return this.tx.purge(before, limit);
  }

  async claimDeliveries(now: number, limit: number, leaseUntil: number): Promise<OutboxEntry[]> {
    return this.tx.claim(now, limit, leaseUntil);
  }

  async finishDelivery(seq: number, attempt: DeliveryAttempt, outcome: DeliveryOutcome): Promise<void> {
    this.tx.finish(seq, attempt, outcome);
    this.wrote();
  }

  async nextDeliveryAt(): Promise<number | undefined> {
    return (this.stmts.nextDelivery.get() as number | null) ?? undefined;
  }

  async listDeliveries(q: DeliveryQuery): Promise<(OutboxEntry & { attemptLog: DeliveryAttempt[] })[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.callId) {
      where.push('call_id = ?');
      args.push(q.callId);
    }
    if (q.status) {
      where.push('status = ?');
      args.push(q.status);
    }
    const rows = this.db
      .prepare(`SELECT * FROM outbox ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`)
      .all(...args, q.limit) as OutboxRow[];
    return rows.map((r) => ({
      ...toEntry(r),
      attemptLog: (this.stmts.attemptsOf.all(r.seq) as AttemptRow[]).map((a) => ({
        attempt: a.attempt,
        at: a.at,
        statusCode: a.status_code,
        latencyMs: a.latency_ms,
        error: a.error,
        outcome: a.outcome as DeliveryAttempt['outcome'],
      })),
    }));
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

  async resetCalls(): Promise<void> {
    this.db.transaction(() => {
      this.db.exec('DELETE FROM delivery_attempts; DELETE FROM outbox; DELETE FROM calls;');
    })();
    this.wrote();
  }

  async outboxDepth(): Promise<number> {
    return this.stmts.outboxDepth.get() as number;
  }

  async counts(): Promise<{ active: number; ended: number }> {
    return { active: this.stmts.countActive.get() as number, ended: this.stmts.countEnded.get() as number };
  }

  async getOrInitSetting(key: string, value: string): Promise<string> {
    this.stmts.initSetting.run(key, value);
    return this.stmts.getSetting.get(key) as string;
  }

  async getSetting(key: string): Promise<string | undefined> {
    return (this.stmts.getSetting.get(key) as string | undefined) ?? undefined;
  }

  async putSetting(key: string, value: string): Promise<void> {
    this.stmts.putSetting.run(key, value);
  }

  async close(): Promise<void> {
    // The worker's connection first: the last one to close checkpoints and removes the WAL.
    await this.checkpointer?.close();
    if (this.db.open) this.db.close();
  }
}
