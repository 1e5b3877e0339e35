import { EventEmitter } from 'node:events';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { AppRegistration } from '../auth/apps.js';
import type { CallNotification } from '../calls/call-notifications.js';
import type { CallOwner, CallRecord, CallState, CallSummary, ResultInfo } from '../calls/call-types.js';
import { advanceStep, initClockStep } from '../clock/clock-math.js';
import type { AddAppResult } from './apps-port.js';
import type { Answer, ExpiryResults, ListPage, ListQuery, NewCall, NextDue } from './calls-port.js';
import type { ClockState, StoreChange } from './clock-port.js';
import {
  type CallSnapshot,
  DEFAULT_OUTBOX_BOUNDS,
  type DeliveryAttempt,
  type DeliveryOutcome,
  type DeliveryQuery,
  type FinishResult,
  type OutboxBounds,
  type OutboxEntry,
  type OutboxFact,
  type OutboxStats,
  type Transition,
} from './outbox-port.js';
import { ensurePrivateFile, preparePrivateDataDir, privateDatabaseFiles } from './private-files.js';
import { notFound, ok, type WriteResult, wrongState } from './results.js';
import { SqliteCheckpointer } from './sqlite-checkpointer.js';
import { GroupCommit } from './sqlite-group-commit.js';
import { acquireDataDirLock } from './sqlite-lock.js';
import { MIGRATE_FROM_6, MIGRATE_FROM_7, MIGRATE_FROM_7_COPY, SCHEMA, SCHEMA_VERSION } from './sqlite-schema.js';
import type { Store } from './store.js';
import { DuplicateCallError, StoreUnavailableError } from './store-errors.js';

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
  transition: string;
  result: string | null;
  snapshot: string;
  created_at: number;
  status: string;
  attempts: number;
  next_attempt_at: number | null;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
  lease: number;
  dead_reason: string | null;
  /** An 'ended' fact's call resource, kept in call_resources: its snapshot holds the rest. */
  resource_rid: number | null;
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

interface ClockRow {
  wall_origin: number;
  virtual_origin: number;
  scale: number;
  offset_ms: number;
  floor: number;
  version: number;
}

/**
 * The page cache (bytes). call_hot of 1,000,000 calls is about 60 MB (85 MB when its ids came in
 * random order and its pages are two-thirds full), so all of it fits, with room for the pages
 * sweeps and lookups read; only pages read take memory.
 */
const CACHE_BYTES = 96 * 1024 * 1024;
/** call_hot rows read into the cache per turn of the event loop while warming it (warmHot). */
const WARM_SLICE = 4_000;

/** Largest WAL (bytes) before the writer completes a checkpoint itself (see finishCheckpoint). */
const WAL_LIMIT = 32 * 1024 * 1024;

/** calls' columns of a call (sqlite-schema.ts): what is neither in call_hot nor the resource. */
const CALL_COLUMNS =
  'rid, id, app_id, tenant_id, state, direction, created_at, establish_at, ended_at, result_code, result_subcode, result_message';
/**
 * A call but its resource, as RETURNING of a write on calls gives it: the hot columns read from
 * call_hot by subquery (RETURNING can name only the table written).
 */
const LEAN_RETURNING = `${CALL_COLUMNS}, (SELECT deadline FROM call_hot h WHERE h.id = calls.id) AS deadline,
  (SELECT last_keepalive_at FROM call_hot h WHERE h.id = calls.id) AS last_keepalive_at`;
/** A whole call: `c` (calls) with its hot row `h` and its resource `r`. */
const COLUMNS = `${CALL_COLUMNS.replace(/(\w+)/g, 'c.$1')}, h.deadline, h.last_keepalive_at, r.resource`;
/** Both join conditions: from an id (h's key) to c by rid, or from c (a list) to h by id. */
const CALLS = 'calls c JOIN call_hot h ON h.id = c.id AND h.rid = c.rid JOIN call_resources r ON r.rid = c.rid';
/** A call's row in calls, found by id through call_hot, only while it is live. */
const LIVE_RID = '(SELECT rid FROM call_hot WHERE id = :id AND deadline > :now)';
const END_SET = `state = 'terminated', check_at = NULL, establish_at = NULL`;

/** Change feeds of on-disk stores, by file: two handles on one file in one process hear each other. */
const feeds = new Map<string, { emitter: EventEmitter; users: number }>();

type LeanRow = Omit<Row, 'resource'>;
/** What call_hot holds of a call besides its key (sqlite-schema.ts). */
type HotColumns = Pick<Row, 'deadline' | 'last_keepalive_at'>;
/** What calls holds of a call (CALL_COLUMNS). */
type CallColumns = Omit<Row, 'resource' | 'deadline' | 'last_keepalive_at'>;

/**
 * What the sweep reads of each call whose check has come (the dueWindow statement): what its
 * CallSummary needs beyond what ending it sets (END_SET: terminated, no deadline, no establish
 * time), its deadline (passed: it ends, stamped then; still ahead: it was kept alive since, and
 * only its check moves), and whether it is incoming (which result it ends with).
 */
type DueRow = [number, string, string, string, 'incoming' | 'outgoing', number, number | null, number | null, 0 | 1];

function expiredSummary(r: DueRow, results: ExpiryResults): CallSummary {
  const [, id, appId, tenantId, direction, createdAt, lastKeepAliveAt, endedAt, unanswered] = r;
  const result = unanswered ? results.unanswered : results.keepAlive;
  return {
    id,
    owner: { appId, tenantId },
    state: 'terminated',
    direction,
    createdAt,
    lastKeepAliveAt,
    deadline: null,
    establishAt: null,
    endedAt,
    resultInfo: { code: result.code, subcode: result.subcode, message: result.message },
  };
}

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

/** `resource`: the text of the call resource an 'ended' fact refers to (resource_rid). */
function toFact(r: OutboxRow, resource: string | undefined): OutboxFact {
  if (r.transition === 'notification') return { transition: 'notification', notification: JSON.parse(r.snapshot) as CallNotification };
  let snapshot = JSON.parse(r.snapshot) as CallSnapshot;
  // A fact that refers to its call's resource keeps only direction and state in its snapshot; the
  // purge keeps the resource while a fact refers to it ({} only if the file was edited by hand).
  if (r.resource_rid !== null)
    snapshot = {
      id: r.call_id,
      owner: { appId: r.app_id, tenantId: r.tenant_id },
      direction: snapshot.direction,
      state: snapshot.state,
      resource: resource === undefined ? {} : (JSON.parse(resource) as Record<string, unknown>),
    };
  return {
    transition: r.transition as Transition,
    result: r.result === null ? null : (JSON.parse(r.result) as ResultInfo),
    snapshot,
  };
}

function toEntry(r: OutboxRow, resource: string | undefined): OutboxEntry {
  const fact = toFact(r, resource);
  // The sweep's 'ended' facts leave callback_uri empty: the resource they refer to holds it, and
  // reading it there at delivery spares the sweep a read and a parse of every call's resource.
  let callbackUri = r.callback_uri;
  if (callbackUri === '' && r.resource_rid !== null && fact.transition !== 'notification') {
    const uri = fact.snapshot.resource.callbackUri;
    callbackUri = typeof uri === 'string' ? uri : '';
  }
  return {
    seq: r.seq,
    callId: r.call_id,
    owner: { appId: r.app_id, tenantId: r.tenant_id },
    callbackUri,
    fact,
    createdAt: r.created_at,
    status: r.status as OutboxEntry['status'],
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at ?? r.created_at,
    lastStatusCode: r.last_status,
    lastError: r.last_error,
    deliveredAt: r.delivered_at,
    lease: r.lease,
    deadReason: r.dead_reason === 'overflow' ? 'overflow' : null,
  };
}

function toClock(r: ClockRow): ClockState {
  return {
    wallOrigin: r.wall_origin,
    virtualOrigin: r.virtual_origin,
    scale: r.scale,
    offset: r.offset_ms,
    floor: r.floor,
    version: r.version,
  };
}

/**
 * Creates the schema of a fresh file, migrates a version 6 store (sqlite-schema.ts), and refuses
 * any other version with what to do about it.
 */
function openSchema(db: Database.Database, location: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  const fresh = db.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'calls'`).pluck().get() === 0;
  if (fresh || version === SCHEMA_VERSION) {
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return;
  }
  if (version === 6 || version === 7) {
    // One transaction: a kill half-way leaves the file as it was.
    db.transaction(() => {
      if (version === 6) db.exec(MIGRATE_FROM_6);
      db.exec(MIGRATE_FROM_7);
      db.exec(SCHEMA);
      db.exec(MIGRATE_FROM_7_COPY);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
    return;
  }
  const why =
    version > SCHEMA_VERSION
      ? `written by a newer version of callkeeper (schema ${version}; this one reads ${SCHEMA_VERSION} and migrates 6 and 7)`
      : `written by an older pre-release of callkeeper (schema ${version}; this one reads ${SCHEMA_VERSION} and migrates only 6 and 7)`;
  throw new Error(`${location} was ${why}; use that version, or start with an empty --data directory`);
}

/** SQLite's errors that mean "cannot use the database now", not "this request is wrong". */
function unavailable(err: unknown): StoreUnavailableError | undefined {
  const e = err as { code?: string; message?: string };
  if (typeof e.code === 'string' && e.code.startsWith('SQLITE_') && !e.code.startsWith('SQLITE_CONSTRAINT'))
    return new StoreUnavailableError(`the SQLite store failed: ${e.message ?? e.code}`, err);
  if (err instanceof TypeError && /database connection is not open/.test(e.message ?? ''))
    return new StoreUnavailableError('the SQLite store is closed', err);
  return undefined;
}

export interface SqliteStoreOptions {
  /** Directory for callkeeper.db; omit for an in-memory database. */
  dataDir?: string;
  /**
   * Refuse to open a directory another store holds (default true): see sqlite-lock.ts. Only
   * tests that open a second connection on purpose turn it off.
   */
  singleWriter?: boolean;
  /** Bounds on undelivered notifications (DEFAULT_OUTBOX_BOUNDS). */
  outboxBounds?: OutboxBounds;
}

/**
 * The embedded store. better-sqlite3 is synchronous; each method runs one statement or one
 * transaction and resolves after it committed. WAL with synchronous=NORMAL: a commit is in
 * the WAL file (the OS has it) before the method returns, so killing the process loses
 * nothing acknowledged; only a power loss could lose the last transactions. One server per
 * data directory (a lock file); several instances share state through the Redis store.
 */
export class SqliteStore implements Store {
  readonly location: string;
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly stmts;
  private readonly tx;
  private readonly checkpointer: SqliteCheckpointer | undefined;
  private readonly bounds: OutboxBounds;
  private readonly feed: EventEmitter;
  private readonly release: (() => void) | undefined;
  private readonly enqueueNotifications: (
    call: Pick<CallRecord, 'id' | 'owner' | 'resource'>,
    notifications: CallNotification[],
    at: number,
  ) => void;
  /** The next slice of warmHot, until call_hot is in the page cache. */
  private warming: NodeJS.Immediate | undefined;
  /** Bytes of a page: a WAL frame holds one (and a 24-byte header). */
  private pageSize = 4096;
  /** keepAlives arriving together share one commit (sqlite-group-commit.ts). */
  readonly group: GroupCommit;

  constructor(options: SqliteStoreOptions = {}) {
    this.bounds = options.outboxBounds ?? DEFAULT_OUTBOX_BOUNDS;
    if (options.dataDir) {
      // It holds the signing key and app secrets: 0700 directory, 0600 files (docs/security.md).
      preparePrivateDataDir(options.dataDir);
      this.location = resolve(join(options.dataDir, 'callkeeper.db'));
      this.release = options.singleWriter === false ? undefined : acquireDataDirLock(resolve(options.dataDir));
      try {
        ensurePrivateFile(this.location);
        this.db = new Database(this.location);
      } catch (err) {
        this.release?.();
        throw err;
      }
      this.db.pragma('journal_mode = WAL');
      // SQLite gives -wal and -shm the database file's mode; an older, wider pair is narrowed.
      privateDatabaseFiles(this.location);
      this.db.pragma('synchronous = NORMAL');
      // Checkpoints happen in a worker (sqlite-checkpointer.ts), never inside a request's commit.
      this.db.pragma('wal_autocheckpoint = 0');
      // call_hot stays in memory with a million calls on disk (warmHot).
      this.db.pragma(`cache_size = -${CACHE_BYTES / 1024}`);
      this.db.pragma('busy_timeout = 5000');
      // Before anything else holds the file (the checkpoint worker, the change feed).
      try {
        openSchema(this.db, this.location);
      } catch (err) {
        this.db.close();
        this.release?.();
        throw err;
      }
      this.pageSize = this.db.pragma('page_size', { simple: true }) as number;
      this.checkpointer = new SqliteCheckpointer(this.location, {
        limitFrames: Math.ceil(WAL_LIMIT / (this.pageSize + 24)),
        onFull: () => this.finishCheckpoint(),
      });
      let shared = feeds.get(this.location);
      if (!shared) {
        shared = { emitter: new EventEmitter(), users: 0 };
        shared.emitter.setMaxListeners(0);
        feeds.set(this.location, shared);
      }
      shared.users++;
      this.feed = shared.emitter;
    } else {
      this.location = 'memory';
      this.db = new Database(':memory:');
      openSchema(this.db, this.location);
      this.feed = new EventEmitter();
      this.feed.setMaxListeners(0);
    }
    this.db.pragma('busy_timeout = 5000');
    this.group = new GroupCommit(this.db, 2_000);
    if (options.dataDir) this.warmHot();
    const db = this.db;
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO calls (id, app_id, tenant_id, state, direction, created_at, check_at, establish_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertOwner: db.prepare('INSERT INTO call_owners (app_id, tenant_id) VALUES (?, ?) ON CONFLICT DO NOTHING'),
      // The id is call_hot's key: a second call with it fails here (SQLITE_CONSTRAINT_PRIMARYKEY).
      insertHot: db.prepare(
        `INSERT INTO call_hot (id, owner, deadline, rid)
         VALUES (?, (SELECT owner FROM call_owners WHERE app_id = ? AND tenant_id = ?), ?, ?)`,
      ),
      insertResource: db.prepare('INSERT INTO call_resources (rid, resource) VALUES (?, ?)'),
      resourceOf: db.prepare('SELECT resource FROM call_resources WHERE rid = ?').pluck(),
      patchResource: db.prepare('UPDATE call_resources SET resource = json_patch(resource, ?) WHERE rid = ? RETURNING resource').pluck(),
      findLive: db.prepare(`SELECT ${COLUMNS} FROM ${CALLS} WHERE h.id = ? AND c.app_id = ? AND c.tenant_id = ? AND h.deadline > ?`),
      findLiveAny: db.prepare(
        `SELECT c.state FROM call_hot h JOIN calls c ON c.rid = h.rid
         WHERE h.id = :id AND h.deadline > :now AND (:appId IS NULL OR (c.app_id = :appId AND c.tenant_id = :tenantId))`,
      ),
      get: db.prepare(`SELECT ${COLUMNS} FROM ${CALLS} WHERE h.id = ?`),
      // call_hot alone: one small row rewritten, in a b-tree that stays cached (sqlite-schema.ts).
      keepAlive: db.prepare(
        `UPDATE call_hot SET last_keepalive_at = ?, deadline = ?
         WHERE id = ? AND owner = (SELECT owner FROM call_owners WHERE app_id = ? AND tenant_id = ?) AND deadline > ?`,
      ),
      end: db.prepare(
        `UPDATE calls SET ${END_SET}, ended_at = :now, result_code = :code, result_subcode = :subcode, result_message = :message
         WHERE rid = ${LIVE_RID} AND (:appId IS NULL OR (app_id = :appId AND tenant_id = :tenantId))
           AND (:onlyState IS NULL OR state = :onlyState)
         RETURNING ${CALL_COLUMNS}`,
      ),
      // An ended call has no deadline: nothing keeps it alive or finds it live again.
      endHot: db.prepare('UPDATE call_hot SET deadline = NULL WHERE id = ? RETURNING deadline, last_keepalive_at'),
      answer: db.prepare(
        `UPDATE calls SET state = 'establishing', check_at = :deadline, establish_at = :establishAt
         WHERE rid = ${LIVE_RID} AND app_id = :appId AND tenant_id = :tenantId AND state = 'incoming'
         RETURNING ${CALL_COLUMNS}`,
      ),
      answerHot: db.prepare('UPDATE call_hot SET deadline = ? WHERE id = ? RETURNING deadline, last_keepalive_at'),
      // The sweep's window: calls whose check has come, in check order, each read once with its
      // hot row (DueRow). The deadline itself is not indexed: a keepAlive moves it on every call,
      // and an index on it would cost two index-page writes per keepAlive. check_at is indexed
      // instead and moves only in the sweep: to the deadline of a call kept alive since its
      // check (recheck), away when the call ends. Either way the call leaves the window.
      dueWindow: db
        .prepare(
          `SELECT c.rid, c.id, c.app_id, c.tenant_id, c.direction, c.created_at, h.last_keepalive_at, h.deadline,
             c.state = 'incoming'
           FROM calls c JOIN call_hot h ON h.id = c.id
           WHERE c.check_at <= :now ORDER BY c.check_at LIMIT :limit`,
        )
        // Arrays: row objects were half the cost of reading a sweep's calls.
        .raw(true),
      // The window's due calls end, each stamped at its own deadline however late the sweep runs
      // (`ends`: [rid, deadline] pairs as JSON); the CASE sees the row's old state.
      endDue: db.prepare(
        `UPDATE calls SET ${END_SET}, ended_at = j.value ->> 1,
           result_code = CASE WHEN state = 'incoming' THEN :uCode ELSE :kCode END,
           result_subcode = CASE WHEN state = 'incoming' THEN :uSubcode ELSE :kSubcode END,
           result_message = CASE WHEN state = 'incoming' THEN :uMessage ELSE :kMessage END
         FROM json_each(:ends) j WHERE calls.rid = j.value ->> 0`,
      ),
      // The 'ended' facts of a sweep's calls in one statement, in end order. An ended call's
      // resource no longer changes, so each fact refers to it (resource_rid) instead of copying
      // it: the snapshot holds the rest, and its callbackUri is read from it at delivery (toEntry;
      // reading every resource here was a fifth of the sweep's CPU). Each is the head of its
      // call's line (due now) unless the call has older pending ones. SQLite materialises the SELECT first (it reads the
      // outbox it inserts into), so each row's "has pending" looks at the outbox as it was
      // before the statement.
      enqueueEnded: db
        .prepare(
          `INSERT INTO outbox (call_id, app_id, tenant_id, callback_uri, transition, result, snapshot, created_at, next_attempt_at, resource_rid)
         SELECT c.id, c.app_id, c.tenant_id, '', 'ended',
           json_object('code', c.result_code, 'subcode', c.result_subcode, 'message', c.result_message),
           json_object('direction', c.direction, 'state', c.state),
           c.ended_at,
           CASE WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.call_id = c.id AND o.status = 'pending') THEN NULL ELSE c.ended_at END,
           c.rid
         FROM calls c WHERE c.rid IN (SELECT value FROM json_each(?))
         ORDER BY c.ended_at, c.rid
         RETURNING CASE WHEN next_attempt_at IS NULL THEN call_id END`,
        )
        // Per fact, the call id if it queued behind older entries of its call, else NULL.
        .pluck(),
      // A call of the window kept alive since its check: its check moves to its deadline
      // ([rid, deadline] pairs as JSON).
      recheck: db.prepare('UPDATE calls SET check_at = j.value ->> 1 FROM json_each(?) j WHERE calls.rid = j.value ->> 0'),
      // The ended calls' hot rows: their deadline goes (a sweep's ids, as a JSON array).
      expireHot: db.prepare('UPDATE call_hot SET deadline = NULL WHERE id IN (SELECT value FROM json_each(?))'),
      establishDue: db.prepare(
        `UPDATE calls SET state = 'established', establish_at = NULL
         WHERE rid IN (SELECT rid FROM calls WHERE establish_at <= ? ORDER BY establish_at LIMIT ?)
         RETURNING ${LEAN_RETURNING}`,
      ),
      minDeadline: db.prepare('SELECT min(check_at) AS t FROM calls WHERE check_at IS NOT NULL').pluck(),
      minEstablish: db.prepare('SELECT min(establish_at) AS t FROM calls WHERE establish_at IS NOT NULL').pluck(),
      minEnded: db.prepare('SELECT min(ended_at) AS t FROM calls WHERE ended_at IS NOT NULL').pluck(),
      purge: db.prepare(
        'DELETE FROM calls WHERE rid IN (SELECT rid FROM calls WHERE ended_at <= ? ORDER BY ended_at LIMIT ?) RETURNING rid, id',
      ),
      purgeHot: db.prepare('DELETE FROM call_hot WHERE id = ?'),
      // A resource goes once neither its call nor a fact refers to it (a call's facts are found
      // through outbox_by_call: no index on resource_rid to write per fact).
      dropResource: db.prepare(
        `DELETE FROM call_resources WHERE rid = :rid AND NOT EXISTS (SELECT 1 FROM calls WHERE rid = :rid)
           AND NOT EXISTS (SELECT 1 FROM outbox WHERE call_id = :callId AND resource_rid = :rid)`,
      ),
      // Both go through outbox_finished (created_at of delivered and dead entries): a purge
      // reads what it deletes, not the whole outbox.
      finishedBefore: db
        .prepare(`SELECT seq FROM outbox WHERE status != 'pending' AND created_at <= ? ORDER BY created_at LIMIT ?`)
        .pluck(),
      purgeAttempts: db.prepare('DELETE FROM delivery_attempts WHERE seq = ?'),
      purgeOutbox: db.prepare('DELETE FROM outbox WHERE seq = ? RETURNING resource_rid AS rid, call_id AS id'),
      countActive: db.prepare('SELECT count(*) FROM calls WHERE check_at IS NOT NULL').pluck(),
      countEnded: db.prepare('SELECT count(*) FROM calls WHERE ended_at IS NOT NULL').pluck(),
      getSetting: db.prepare('SELECT value FROM settings WHERE key = ?').pluck(),
      initSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING'),
      putSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      // Only the head of a call's line (its oldest pending entry) has a next_attempt_at;
      // the rest wait with NULL until it is done. So "what is due" is one index range scan.
      hasPending: db.prepare(`SELECT 1 FROM outbox WHERE call_id = ? AND status = 'pending' LIMIT 1`).pluck(),
      pendingOfCall: db.prepare(`SELECT count(*) FROM outbox WHERE call_id = ? AND status = 'pending'`).pluck(),
      oldestPendingOfCall: db.prepare(`SELECT min(seq) FROM outbox WHERE call_id = ? AND status = 'pending'`).pluck(),
      oldestPending: db.prepare(`SELECT min(seq) FROM outbox WHERE status = 'pending'`).pluck(),
      enqueue: db.prepare(
        `INSERT INTO outbox (call_id, app_id, tenant_id, callback_uri, transition, result, snapshot, created_at, next_attempt_at, resource_rid)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      overflow: db.prepare(
        `UPDATE outbox SET status = 'dead', dead_reason = 'overflow', next_attempt_at = NULL, lease = lease + 1
         WHERE seq = ? AND status = 'pending' RETURNING call_id`,
      ),
      stats: db.prepare('SELECT pending, overflowed FROM outbox_stats WHERE id = 1'),
      addPending: db.prepare('UPDATE outbox_stats SET pending = pending + ?, overflowed = overflowed + ? WHERE id = 1'),
      claimable: db.prepare(
        `SELECT seq FROM outbox WHERE status = 'pending' AND next_attempt_at IS NOT NULL AND next_attempt_at <= :now
         ORDER BY next_attempt_at, seq LIMIT :limit`,
      ),
      // A lease is a postponement: the entry is not due again until the claimer's time is up.
      // Each claim bumps the entry's fencing token.
      lease: db.prepare('UPDATE outbox SET next_attempt_at = ?, lease = lease + 1 WHERE seq = ? RETURNING *'),
      finish: db.prepare(
        `UPDATE outbox SET status = :status, attempts = attempts + 1, next_attempt_at = :next,
           last_status = :statusCode, last_error = :error, delivered_at = :deliveredAt
         WHERE seq = :seq AND lease = :lease AND status = 'pending' RETURNING call_id`,
      ),
      exists: db.prepare('SELECT 1 FROM outbox WHERE seq = ?').pluck(),
      promote: db.prepare(
        `UPDATE outbox SET next_attempt_at = :now
         WHERE seq = (SELECT min(seq) FROM outbox WHERE call_id = :callId AND status = 'pending') AND next_attempt_at IS NULL`,
      ),
      recordAttempt: db.prepare(
        'INSERT OR REPLACE INTO delivery_attempts (seq, attempt, at, status_code, latency_ms, error, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      nextDelivery: db.prepare(`SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending' AND next_attempt_at IS NOT NULL`).pluck(),
      attemptsOf: db.prepare('SELECT * FROM delivery_attempts WHERE seq = ? ORDER BY attempt'),
      readClock: db.prepare('SELECT * FROM clock WHERE id = 1'),
      writeClock: db.prepare(
        `INSERT INTO clock (id, wall_origin, virtual_origin, scale, offset_ms, floor, version)
         VALUES (1, :wallOrigin, :virtualOrigin, :scale, :offset, :floor, :version)
         ON CONFLICT(id) DO UPDATE SET wall_origin = excluded.wall_origin, virtual_origin = excluded.virtual_origin,
           scale = excluded.scale, offset_ms = excluded.offset_ms, floor = excluded.floor, version = excluded.version`,
      ),
      addApp: db.prepare(
        `INSERT INTO apps (client_id, registration) SELECT ?, ? WHERE (SELECT count(*) FROM apps) < ? ON CONFLICT(client_id) DO NOTHING`,
      ),
      appExists: db.prepare('SELECT 1 FROM apps WHERE client_id = ?').pluck(),
      findApp: db.prepare('SELECT registration FROM apps WHERE client_id = ?').pluck(),
      listApps: db.prepare('SELECT registration FROM apps ORDER BY seq').pluck(),
    };
    /** Dead-letters one pending entry to keep the outbox within its bounds. */
    const overflow = (seq: number, at: number) => {
      const row = this.stmts.overflow.get(seq) as { call_id: string } | undefined;
      if (!row) return;
      this.stmts.addPending.run(-1, 1);
      this.stmts.promote.run({ now: at, callId: row.call_id });
    };
    /** `resourceRid`: the fact refers to its call's stored resource rather than copying it. */
    const enqueueFact = (call: Pick<CallRecord, 'id' | 'owner' | 'resource'>, fact: OutboxFact, at: number, resourceRid?: number) => {
      const callbackUri = typeof call.resource.callbackUri === 'string' ? call.resource.callbackUri : '';
      const head = this.stmts.hasPending.get(call.id) === undefined;
      const isCall = fact.transition !== 'notification';
      let stored: unknown = isCall ? fact.snapshot : fact.notification;
      if (isCall && resourceRid !== undefined) stored = { direction: fact.snapshot.direction, state: fact.snapshot.state };
      this.stmts.enqueue.run(
        call.id,
        call.owner.appId,
        call.owner.tenantId,
        callbackUri,
        fact.transition,
        isCall && fact.result !== null ? JSON.stringify(fact.result) : null,
        JSON.stringify(stored),
        at,
        head ? at : null,
        resourceRid ?? null,
      );
      this.stmts.addPending.run(1, 0);
      if (!head && (this.stmts.pendingOfCall.get(call.id) as number) > this.bounds.perCall)
        overflow(this.stmts.oldestPendingOfCall.get(call.id) as number, at);
      const { pending } = this.stmts.stats.get() as { pending: number };
      if (pending > this.bounds.total) overflow(this.stmts.oldestPending.get() as number, at);
    };
    const enqueue = (call: CallRecord, transition: Transition, result: ResultInfo | null, at: number, resourceRid?: number) =>
      enqueueFact(
        call,
        {
          transition,
          result,
          snapshot: { id: call.id, owner: call.owner, direction: call.direction, state: call.state, resource: call.resource },
        },
        at,
        resourceRid,
      );
    /** A hot row returned by a write, made whole with its resource (`resource`: a new text). */
    const whole = (row: LeanRow, resource?: string): CallRecord =>
      toRecord({ ...row, resource: resource ?? (this.stmts.resourceOf.get(row.rid) as string) });
    this.enqueueNotifications = (call, notifications, at) => {
      for (const notification of notifications) enqueueFact(call, { transition: 'notification', notification }, at);
    };
    /** Why a conditional write on a call matched nothing, read in the same transaction. */
    const refusal = (id: string, owner: CallOwner | null, now: number) => {
      const live = this.stmts.findLiveAny.get({ id, now, appId: owner?.appId ?? null, tenantId: owner?.tenantId ?? null }) as
        | { state: CallState }
        | undefined;
      return live ? wrongState(live.state) : notFound;
    };
    this.tx = {
      create: db.transaction((call: NewCall) => {
        const { lastInsertRowid } = this.stmts.insert.run(
          call.id,
          call.owner.appId,
          call.owner.tenantId,
          call.state,
          call.direction,
          call.createdAt,
          call.deadline,
          call.establishAt,
        );
        this.stmts.insertOwner.run(call.owner.appId, call.owner.tenantId);
        this.stmts.insertHot.run(call.id, call.owner.appId, call.owner.tenantId, call.deadline, lastInsertRowid);
        this.stmts.insertResource.run(lastInsertRowid, JSON.stringify(call.resource));
        const record: CallRecord = { ...call, lastKeepAliveAt: null, endedAt: null, resultInfo: null };
        enqueue(record, 'created', null, call.createdAt);
      }),
      end: db.transaction((params: Record<string, string | number | null>, now: number, result: ResultInfo): WriteResult<CallRecord> => {
        const cold = this.stmts.end.get(params) as CallColumns | undefined;
        if (!cold) {
          const owner = params.appId === null ? null : { appId: String(params.appId), tenantId: String(params.tenantId) };
          return refusal(String(params.id), owner, now);
        }
        const row = { ...cold, ...(this.stmts.endHot.get(cold.id) as HotColumns) };
        const call = whole(row);
        // An ended call's resource no longer changes: the fact refers to it.
        enqueue(call, 'ended', result, now, row.rid);
        return ok(call);
      }),
      answer: db.transaction((params: Record<string, string | number>, now: number): WriteResult<CallRecord> => {
        const cold = this.stmts.answer.get(params) as CallColumns | undefined;
        if (!cold) return refusal(String(params.id), { appId: String(params.appId), tenantId: String(params.tenantId) }, now);
        const row = { ...cold, ...(this.stmts.answerHot.get(params.deadline, cold.id) as HotColumns) };
        const call = whole(row, this.stmts.patchResource.get(params.patch, row.rid) as string);
        enqueue(call, 'answered', null, now);
        return ok(call);
      }),
      expireDue: db.transaction((params: Record<string, string | number>, results: ExpiryResults): CallSummary[] => {
        // Window after window of calls whose check has come, until `limit` have ended or none is
        // left: each call read leaves the window (ended, or its check moved on), so no call is
        // read twice, and a sweep of 100,000 reads each once (no pass over all of them first to
        // find those kept alive since their check).
        const now = Number(params.now);
        const limit = Number(params.limit);
        const { kCode, kSubcode, kMessage, uCode, uSubcode, uMessage } = params;
        const rows: DueRow[] = [];
        for (;;) {
          const want = limit - rows.length;
          const window = this.stmts.dueWindow.all({ now, limit: want }) as DueRow[];
          const ends: [number, number][] = [];
          const kept: [number, number][] = [];
          for (const r of window) {
            if (r[7] !== null && r[7] > now) kept.push([r[0], r[7]]);
            else {
              // A deadline is never missing while a check is set; if a file says otherwise, now.
              r[7] ??= now;
              ends.push([r[0], r[7]]);
              rows.push(r);
            }
          }
          if (ends.length > 0) {
            const ended = this.stmts.endDue.run({ kCode, kSubcode, kMessage, uCode, uSubcode, uMessage, ends: JSON.stringify(ends) });
            if (ended.changes !== ends.length) throw new Error(`the sweep ended ${ended.changes} of ${ends.length} due calls`);
          }
          if (kept.length > 0) this.stmts.recheck.run(JSON.stringify(kept));
          // No call kept alive: the window was all due. A short window: none is left.
          if (kept.length === 0 || window.length < want) break;
        }
        if (rows.length === 0) return [];
        this.stmts.expireHot.run(JSON.stringify(rows.map((r) => r[1])));
        const queued = this.stmts.enqueueEnded.all(JSON.stringify(rows.map((r) => r[0]))) as (string | null)[];
        this.stmts.addPending.run(queued.length, 0);
        // The bounds, as enqueueFact keeps them one entry at a time: a call with older pending
        // entries may now be past its own bound; the whole outbox past its total.
        for (const callId of queued)
          if (callId !== null && (this.stmts.pendingOfCall.get(callId) as number) > this.bounds.perCall)
            overflow(this.stmts.oldestPendingOfCall.get(callId) as number, now);
        for (let { pending } = this.stmts.stats.get() as { pending: number }; pending > this.bounds.total; pending--)
          overflow(this.stmts.oldestPending.get() as number, now);
        return rows
          .map((r) => {
            const ended = expiredSummary(r, results);
            // Observers of an end get the resource of incoming calls only (calls-port.ts).
            if (ended.direction === 'incoming')
              ended.resource = JSON.parse(this.stmts.resourceOf.get(r[0]) as string) as Record<string, unknown>;
            return ended;
          })
          .sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0));
      }),
      establishDue: db.transaction((now: number, limit: number) => {
        const calls = (this.stmts.establishDue.all(now, limit) as LeanRow[]).map((r) => whole(r));
        for (const c of calls) enqueue(c, 'established', null, now);
        return calls;
      }),
      claim: db.transaction((now: number, limit: number, leaseUntil: number) => {
        const seqs = this.stmts.claimable.all({ now, limit }) as { seq: number }[];
        return seqs.map((r) => this.entry(this.stmts.lease.get(leaseUntil, r.seq) as OutboxRow));
      }),
      finish: db.transaction((seq: number, lease: number, a: DeliveryAttempt, outcome: DeliveryOutcome): FinishResult => {
        const done = this.stmts.finish.get({
          seq,
          lease,
          status: outcome.status,
          next: outcome.status === 'pending' ? outcome.nextAttemptAt : null,
          statusCode: a.statusCode,
          error: a.error,
          deliveredAt: outcome.status === 'delivered' ? a.at : null,
        }) as { call_id: string } | undefined;
        if (!done) return { ok: false, reason: this.stmts.exists.get(seq) === undefined ? 'notFound' : 'staleLease' };
        this.stmts.recordAttempt.run(seq, a.attempt, a.at, a.statusCode, a.latencyMs, a.error, a.outcome);
        if (outcome.status !== 'pending') {
          this.stmts.addPending.run(-1, 0);
          // Its call's next entry, if any, is now at the head of the line.
          this.stmts.promote.run({ now: a.at, callId: done.call_id });
        }
        return { ok: true };
      }),
      // A resource outlives its call while an 'ended' fact refers to it, and goes with the last
      // of them (dropResource checks both).
      purge: db.transaction((before: number, limit: number) => {
        const resources = new Map<number, string>();
        for (const seq of this.stmts.finishedBefore.all(before, limit) as number[]) {
          this.stmts.purgeAttempts.run(seq);
          const fact = this.stmts.purgeOutbox.get(seq) as { rid: number | null; id: string } | undefined;
          if (typeof fact?.rid === 'number') resources.set(fact.rid, fact.id);
        }
        const calls = this.stmts.purge.all(before, limit) as { rid: number; id: string }[];
        for (const c of calls) {
          this.stmts.purgeHot.run(c.id);
          resources.set(c.rid, c.id);
        }
        for (const [rid, callId] of resources) this.stmts.dropResource.run({ rid, callId });
        return calls.length;
      }),
      initClock: db.transaction((proposed: ClockState, wallNow: number) => {
        const row = this.stmts.readClock.get() as ClockRow | undefined;
        const next = initClockStep(row && toClock(row), proposed, wallNow);
        this.stmts.writeClock.run(next);
        return next;
      }),
      advanceClock: db.transaction((ms: number, wallNow: number) => {
        const row = this.stmts.readClock.get() as ClockRow | undefined;
        if (!row) throw new Error('the clock was never initialised (initClock)');
        const next = advanceStep(toClock(row), ms, wallNow);
        this.stmts.writeClock.run(next);
        return next;
      }),
      addApp: db.transaction((app: AppRegistration, maxApps: number): AddAppResult => {
        const key = app.clientId.toLowerCase();
        if (this.stmts.appExists.get(key) !== undefined) return { ok: false, reason: 'exists' };
        if (this.stmts.addApp.run(key, JSON.stringify(app), maxApps).changes === 0) return { ok: false, reason: 'limit' };
        return { ok: true };
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
   * Queues notifications the domain rendered (bot actions) for a call, behind those already
   * pending for it, within the outbox bounds; synchronous, so a caller inside a transaction on
   * `database` commits them with its own change.
   */
  enqueueWithin(call: Pick<CallRecord, 'id' | 'owner' | 'resource'>, notifications: CallNotification[], at: number): void {
    this.enqueueNotifications(call, notifications, at);
  }

  /** An outbox row as an entry, with the resource an 'ended' fact refers to. */
  private entry(r: OutboxRow): OutboxEntry {
    return toEntry(r, r.resource_rid === null ? undefined : (this.stmts.resourceOf.get(r.resource_rid) as string | undefined));
  }

  /** Runs one store step, turning "cannot use the database" into StoreUnavailableError. */
  private run<T>(step: () => T): Promise<T> {
    try {
      return Promise.resolve(step());
    } catch (err) {
      return Promise.reject(unavailable(err) ?? err);
    }
  }

  create(call: NewCall): Promise<void> {
    return this.run(() => {
      try {
        this.tx.create(call);
      } catch (err) {
        // call_hot's key (the id) is where a second call with the same id is refused.
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new DuplicateCallError(call.id);
        throw err;
      }
    });
  }

  findLive(id: string, owner: CallOwner, now: number): Promise<CallRecord | undefined> {
    return this.run(() => {
      const row = this.stmts.findLive.get(id, owner.appId, owner.tenantId, now) as Row | undefined;
      return row && toRecord(row);
    });
  }

  get(id: string): Promise<CallRecord | undefined> {
    return this.run(() => {
      const row = this.stmts.get.get(id) as Row | undefined;
      return row && toRecord(row);
    });
  }

  /** Group-committed: answers once the transaction holding this keepAlive has committed. */
  keepAlive(id: string, owner: CallOwner, now: number, deadline: number): Promise<WriteResult<undefined>> {
    return this.group
      .run(() => this.stmts.keepAlive.run(now, deadline, id, owner.appId, owner.tenantId, now).changes === 1, true)
      .then(
        (changed) => (changed ? ok(undefined) : notFound),
        (err: unknown) => {
          throw unavailable(err) ?? err;
        },
      );
  }

  /**
   * The worker has copied all but the last few frames of a WAL past WAL_LIMIT
   * (sqlite-checkpointer.ts); this thread, the only writer, copies those with no commit in
   * between, so the WAL is complete and the next commit starts it again from its beginning (the
   * file keeps its size and is written over). One short stall per WAL_LIMIT of writes: a few
   * frames and two fsyncs. (A TRUNCATE checkpoint here waited in the busy handler for the
   * worker's pass, then copied what that pass had not: 100-200 ms with the event loop blocked.)
   */
  private finishCheckpoint(): void {
    if (!this.db.open) return;
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // Busy (the worker's next pass began): it tells again.
    }
  }

  end(id: string, owner: CallOwner | null, now: number, result: ResultInfo, onlyState?: CallState): Promise<WriteResult<CallRecord>> {
    return this.run(() =>
      this.tx.end(
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
      ),
    );
  }

  answer(id: string, owner: CallOwner, now: number, answer: Answer): Promise<WriteResult<CallRecord>> {
    return this.run(() =>
      this.tx.answer(
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
      ),
    );
  }

  expireDue(now: number, limit: number, results: ExpiryResults): Promise<CallSummary[]> {
    const { keepAlive: k, unanswered: u } = results;
    // IMMEDIATE: the window is read and written in one write transaction (another connection
    // on the file cannot write between, so no call is ended twice).
    return this.run(() =>
      this.tx.expireDue.immediate(
        {
          now,
          limit,
          kCode: k.code,
          kSubcode: k.subcode,
          kMessage: k.message,
          uCode: u.code,
          uSubcode: u.subcode,
          uMessage: u.message,
        },
        results,
      ),
    );
  }

  establishDue(now: number, limit: number): Promise<CallRecord[]> {
    return this.run(() => this.tx.establishDue(now, limit));
  }

  nextDue(): Promise<NextDue> {
    return this.run(() => {
      const out: NextDue = {};
      const d = this.stmts.minDeadline.get() as number | null;
      const e = this.stmts.minEstablish.get() as number | null;
      const x = this.stmts.minEnded.get() as number | null;
      if (d !== null) out.deadline = d;
      if (e !== null) out.establishAt = e;
      if (x !== null) out.oldestEndedAt = x;
      return out;
    });
  }

  purgeEnded(before: number, limit: number): Promise<number> {
    return this.run(() => this.tx.purge(before, limit));
  }

  claimDeliveries(now: number, limit: number, leaseUntil: number): Promise<OutboxEntry[]> {
    return this.run(() => this.tx.claim(now, limit, leaseUntil));
  }

  /**
   * Group-committed like a keepAlive: with a notification delivered every millisecond, a commit
   * of its own each was a large share of the work. tx.finish nests as a savepoint of the group's
   * transaction, so it is atomic by itself; resolves once that transaction has committed.
   */
  finishDelivery(seq: number, lease: number, attempt: DeliveryAttempt, outcome: DeliveryOutcome): Promise<FinishResult> {
    return this.group
      .run(() => this.tx.finish(seq, lease, attempt, outcome), true)
      .catch((err: unknown) => {
        throw unavailable(err) ?? err;
      });
  }

  nextDeliveryAt(): Promise<number | undefined> {
    return this.run(() => (this.stmts.nextDelivery.get() as number | null) ?? undefined);
  }

  outboxDepth(): Promise<number> {
    return this.run(() => (this.stmts.stats.get() as OutboxStats).pending);
  }

  resetCalls(): Promise<void> {
    return this.run(() => {
      this.db.transaction(() => {
        this.db.exec(
          'DELETE FROM delivery_attempts; DELETE FROM outbox; DELETE FROM calls; DELETE FROM call_hot; DELETE FROM call_resources; UPDATE outbox_stats SET pending = 0;',
        );
      })();
    });
  }

  outboxStats(): Promise<OutboxStats> {
    return this.run(() => this.stmts.stats.get() as OutboxStats);
  }

  listDeliveries(q: DeliveryQuery): Promise<(OutboxEntry & { attemptLog: DeliveryAttempt[] })[]> {
    return this.run(() => {
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
        ...this.entry(r),
        attemptLog: (this.stmts.attemptsOf.all(r.seq) as AttemptRow[]).map((a) => ({
          attempt: a.attempt,
          at: a.at,
          statusCode: a.status_code,
          latencyMs: a.latency_ms,
          error: a.error,
          outcome: a.outcome as DeliveryAttempt['outcome'],
        })),
      }));
    });
  }

  list(q: ListQuery): Promise<ListPage> {
    return this.run(() => {
      const where: string[] = [];
      const args: (string | number)[] = [];
      // check_at is set while a call is live and only then (created, answered, rechecked; cleared at its end).
      if (q.state === 'active') where.push('c.check_at IS NOT NULL');
      if (q.state === 'ended') where.push('c.ended_at IS NOT NULL');
      if (q.appId) {
        where.push('c.app_id = ?');
        args.push(q.appId);
      }
      const after = q.after === undefined ? 0 : Number.parseInt(q.after, 36);
      if (Number.isFinite(after) && after > 0) {
        where.push('c.rid > ?');
        args.push(after);
      }
      const sql = `SELECT ${COLUMNS} FROM ${CALLS} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY c.rid LIMIT ?`;
      const rows = this.db.prepare(sql).all(...args, q.limit + 1) as Row[];
      const page: ListPage = { calls: rows.slice(0, q.limit).map(toRecord) };
      const last = rows[q.limit - 1];
      if (rows.length > q.limit && last) page.next = last.rid.toString(36);
      return page;
    });
  }

  counts(): Promise<{ active: number; ended: number }> {
    return this.run(() => ({ active: this.stmts.countActive.get() as number, ended: this.stmts.countEnded.get() as number }));
  }

  getOrInitSetting(key: string, value: string): Promise<string> {
    return this.run(() => {
      this.stmts.initSetting.run(key, value);
      return this.stmts.getSetting.get(key) as string;
    });
  }

  getSetting(key: string): Promise<string | undefined> {
    return this.run(() => (this.stmts.getSetting.get(key) as string | undefined) ?? undefined);
  }

  putSetting(key: string, value: string): Promise<void> {
    return this.run(() => {
      this.stmts.putSetting.run(key, value);
    });
  }

  addApp(app: AppRegistration, maxApps: number): Promise<AddAppResult> {
    return this.run(() => {
      const result = this.tx.addApp(app, maxApps);
      if (result.ok) this.emit({ kind: 'apps' });
      return result;
    });
  }

  findApp(clientId: string): Promise<AppRegistration | undefined> {
    return this.run(() => {
      const text = this.stmts.findApp.get(clientId.toLowerCase()) as string | undefined;
      return text === undefined ? undefined : (JSON.parse(text) as AppRegistration);
    });
  }

  listApps(): Promise<AppRegistration[]> {
    return this.run(() => (this.stmts.listApps.all() as string[]).map((t) => JSON.parse(t) as AppRegistration));
  }

  clearApps(): Promise<string[]> {
    return this.run(() => {
      const ids = this.db.transaction(() => {
        const all = (this.stmts.listApps.all() as string[]).map((t) => (JSON.parse(t) as AppRegistration).clientId);
        this.db.exec('DELETE FROM apps');
        return all;
      })();
      this.emit({ kind: 'apps' });
      return ids;
    });
  }

  initClock(proposed: ClockState, wallNow: number): Promise<ClockState> {
    return this.run(() => {
      const state = this.tx.initClock(proposed, wallNow);
      this.emit({ kind: 'clock', state });
      return state;
    });
  }

  advanceClock(ms: number, wallNow: number): Promise<ClockState> {
    return this.run(() => {
      const state = this.tx.advanceClock(ms, wallNow);
      this.emit({ kind: 'clock', state });
      return state;
    });
  }

  readClock(): Promise<ClockState | undefined> {
    return this.run(() => {
      const row = this.stmts.readClock.get() as ClockRow | undefined;
      return row && toClock(row);
    });
  }

  watch(listener: (change: StoreChange) => void): () => void {
    this.feed.on('change', listener);
    return () => this.feed.off('change', listener);
  }

  private emit(change: StoreChange): void {
    this.feed.emit('change', change);
  }

  /**
   * Reads call_hot into the page cache after opening, a slice of rows per turn of the event loop
   * (requests go on between them): otherwise each of the first keepAlives after a start, on a
   * random call among a million, waits for its page to be read from the OS and for memory to
   * hold it (about 15,000 such first reads for 1,000,000 calls). At most two-thirds of the cache
   * is filled this way, so a table larger than that is warmed only in part.
   */
  private warmHot(): void {
    const slice = this.db.prepare('SELECT max(id) FROM (SELECT id FROM call_hot WHERE id > ? ORDER BY id LIMIT ?)').pluck();
    // About 60 bytes of page a row (sqlite-schema.ts).
    let rows = Math.floor((CACHE_BYTES * 2) / 3 / 60);
    let after = '';
    const step = () => {
      this.warming = undefined;
      if (!this.db.open) return;
      try {
        const last = slice.get(after, WARM_SLICE) as string | null;
        rows -= WARM_SLICE;
        if (last === null || rows <= 0) return;
        after = last;
      } catch {
        return; // Only a warm-up: whatever made it fail, the requests will meet it themselves.
      }
      this.warming = setImmediate(step);
    };
    this.warming = setImmediate(step);
  }

  async close(): Promise<void> {
    if (this.warming) clearImmediate(this.warming);
    // Whatever is queued for the next group commit is committed (and answered) first.
    if (this.db.open) this.group.flush();
    // The worker's connection first: the last one to close checkpoints and removes the WAL.
    await this.checkpointer?.close();
    if (this.db.open) {
      this.db.close();
      this.release?.();
      const shared = feeds.get(this.location);
      if (shared && --shared.users === 0) feeds.delete(this.location);
    }
  }
}

/** The former name of SqliteStore. */
export { SqliteStore as SqliteCallStore };
