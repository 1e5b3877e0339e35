import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { KEEPALIVE_TIMEOUT_RESULT, UNANSWERED_RESULT } from '../src/calls/call-types.js';
import { SqliteBotActionStore } from '../src/store/sqlite-bot-action-store.js';
import { SqliteCallStore } from '../src/store/sqlite-store.js';
import { tempDir } from './helpers.js';

/** The bot-action store's tables and trigger in the same file (versions 6 to 8 alike). */
const BOT_ACTION_DDL = `
CREATE TABLE participants (call_id TEXT NOT NULL, id TEXT NOT NULL, is_bot INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (call_id, id));
CREATE TABLE operations (
  call_id TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, due_at INTEGER, doc TEXT NOT NULL,
  PRIMARY KEY (call_id, id)
);
CREATE INDEX operations_due ON operations(due_at) WHERE due_at IS NOT NULL;
CREATE TABLE call_media (
  call_id TEXT PRIMARY KEY,
  tone_subscribed INTEGER NOT NULL DEFAULT 0,
  tone_sequence INTEGER NOT NULL DEFAULT 0,
  source_sequence INTEGER NOT NULL DEFAULT 0,
  roster_seeded INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER bot_actions_follow_calls AFTER DELETE ON calls BEGIN
  DELETE FROM participants WHERE call_id = OLD.id;
  DELETE FROM operations WHERE call_id = OLD.id;
  DELETE FROM call_media WHERE call_id = OLD.id;
END;
`;

/**
 * The schema of callkeeper's SQLite store at version 6 (src/store/sqlite-schema.ts before the
 * lean hot row), with the bot-action tables and trigger that store adds to the same file: the
 * file a user upgrading from that version has.
 */
const V6_DDL = `
CREATE TABLE calls (
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
CREATE INDEX calls_by_check ON calls(check_at) WHERE check_at IS NOT NULL;
CREATE INDEX calls_by_establish ON calls(establish_at) WHERE establish_at IS NOT NULL;
CREATE INDEX calls_by_ended ON calls(ended_at) WHERE ended_at IS NOT NULL;
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE apps (seq INTEGER PRIMARY KEY, client_id TEXT NOT NULL UNIQUE, registration TEXT NOT NULL);
CREATE TABLE clock (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  wall_origin INTEGER NOT NULL,
  virtual_origin INTEGER NOT NULL,
  scale REAL NOT NULL,
  offset_ms INTEGER NOT NULL,
  floor INTEGER NOT NULL,
  version INTEGER NOT NULL
);
CREATE TABLE outbox_stats (id INTEGER PRIMARY KEY CHECK (id = 1), pending INTEGER NOT NULL, overflowed INTEGER NOT NULL);
INSERT INTO outbox_stats (id, pending, overflowed) VALUES (1, 0, 0);
CREATE TABLE outbox (
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
CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
CREATE INDEX outbox_pending_by_call ON outbox(call_id, seq) WHERE status = 'pending';
CREATE INDEX outbox_pending ON outbox(seq) WHERE status = 'pending';
CREATE INDEX outbox_finished ON outbox(created_at) WHERE status != 'pending';
CREATE INDEX outbox_by_call ON outbox(call_id, seq);
CREATE TABLE delivery_attempts (
  seq INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  at INTEGER NOT NULL,
  status_code INTEGER,
  latency_ms REAL NOT NULL,
  error TEXT,
  outcome TEXT NOT NULL,
  PRIMARY KEY (seq, attempt)
);
${BOT_ACTION_DDL}`;

/**
 * The schema at version 7 (src/store/sqlite-schema.ts before call_hot), frozen here: the calls row
 * with its deadline, last keepAlive and id index, the resource apart, 'ended' facts referring to it.
 */
const V7_DDL = `
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
CREATE TABLE call_resources (rid INTEGER PRIMARY KEY, resource TEXT NOT NULL);
CREATE INDEX calls_by_check ON calls(check_at) WHERE check_at IS NOT NULL;
CREATE INDEX calls_by_establish ON calls(establish_at) WHERE establish_at IS NOT NULL;
CREATE INDEX calls_by_ended ON calls(ended_at) WHERE ended_at IS NOT NULL;
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE apps (seq INTEGER PRIMARY KEY, client_id TEXT NOT NULL UNIQUE, registration TEXT NOT NULL);
CREATE TABLE clock (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  wall_origin INTEGER NOT NULL,
  virtual_origin INTEGER NOT NULL,
  scale REAL NOT NULL,
  offset_ms INTEGER NOT NULL,
  floor INTEGER NOT NULL,
  version INTEGER NOT NULL
);
CREATE TABLE outbox_stats (id INTEGER PRIMARY KEY CHECK (id = 1), pending INTEGER NOT NULL, overflowed INTEGER NOT NULL);
INSERT INTO outbox_stats (id, pending, overflowed) VALUES (1, 0, 0);
CREATE TABLE outbox (
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
CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
CREATE INDEX outbox_pending ON outbox(seq) WHERE status = 'pending';
CREATE INDEX outbox_finished ON outbox(created_at) WHERE status != 'pending';
CREATE INDEX outbox_by_call ON outbox(call_id, seq);
CREATE TABLE delivery_attempts (
  seq INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  at INTEGER NOT NULL,
  status_code INTEGER,
  latency_ms REAL NOT NULL,
  error TEXT,
  outcome TEXT NOT NULL,
  PRIMARY KEY (seq, attempt)
);
${BOT_ACTION_DDL}`;

const OWNER = { appId: 'app-1', tenantId: 'tenant-1' };
const T0 = 1_800_000_000_000;
const resourceOf = (id: string, direction: string) => ({
  callbackUri: `http://127.0.0.1:9/cb/${id}`,
  direction,
  requestedModalities: ['audio'],
  source: { identity: { application: { id: OWNER.appId, displayName: 'bot' } } },
});
const results = { keepAlive: KEEPALIVE_TIMEOUT_RESULT, unanswered: UNANSWERED_RESULT };

/** A version 6 file as that version wrote it: three live calls, one ended, their outbox. */
function writeV6Store(dir: string): void {
  const db = new Database(join(dir, 'callkeeper.db'));
  db.pragma('journal_mode = WAL');
  db.exec(V6_DDL);
  const call = db.prepare(
    `INSERT INTO calls (rid, id, app_id, tenant_id, state, direction, created_at, last_keepalive_at, deadline, check_at, establish_at,
       ended_at, result_code, result_subcode, result_message, resource) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const live = (rid: number, id: string, state: string, direction: string, deadline: number, checkAt: number, kept: number | null) =>
    call.run(
      rid,
      id,
      OWNER.appId,
      OWNER.tenantId,
      state,
      direction,
      T0,
      kept,
      deadline,
      checkAt,
      null,
      null,
      null,
      null,
      null,
      JSON.stringify(resourceOf(id, direction)),
    );
  // 'kept' was kept alive since its check was set: its check_at lags its deadline, as v6 left it.
  live(1, 'kept', 'established', 'outgoing', T0 + 60_000, T0 + 30_000, T0 + 30_000);
  live(2, 'quiet', 'established', 'outgoing', T0 + 45_000, T0 + 45_000, null);
  live(3, 'ringing', 'incoming', 'incoming', T0 + 50_000, T0 + 50_000, null);
  call.run(
    4,
    'gone',
    OWNER.appId,
    OWNER.tenantId,
    'terminated',
    'outgoing',
    T0,
    null,
    null,
    null,
    null,
    T0 + 10_000,
    0,
    5000,
    'ended by the test',
    JSON.stringify(resourceOf('gone', 'outgoing')),
  );
  const fact = db.prepare(
    `INSERT INTO outbox (seq, call_id, app_id, tenant_id, callback_uri, transition, result, snapshot, created_at, status, attempts,
       next_attempt_at, last_status, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const snapshot = (id: string, state: string) =>
    JSON.stringify({ id, owner: OWNER, direction: 'outgoing', state, resource: resourceOf(id, 'outgoing') });
  // 'gone': its created fact delivered (with its attempt), its ended fact pending at the head of its line.
  fact.run(
    1,
    'gone',
    OWNER.appId,
    OWNER.tenantId,
    'http://127.0.0.1:9/cb/gone',
    'created',
    null,
    snapshot('gone', 'establishing'),
    T0,
    'delivered',
    1,
    null,
    202,
    T0 + 5,
  );
  db.prepare(
    `INSERT INTO delivery_attempts (seq, attempt, at, status_code, latency_ms, error, outcome) VALUES (1, 1, ?, 202, 1.5, NULL, 'delivered')`,
  ).run(T0 + 5);
  const ended = JSON.stringify({ code: 0, subcode: 5000, message: 'ended by the test' });
  fact.run(
    2,
    'gone',
    OWNER.appId,
    OWNER.tenantId,
    'http://127.0.0.1:9/cb/gone',
    'ended',
    ended,
    snapshot('gone', 'terminated'),
    T0 + 10_000,
    'pending',
    0,
    T0 + 10_000,
    null,
    null,
  );
  db.prepare('UPDATE outbox_stats SET pending = 1 WHERE id = 1').run();
  db.prepare(`INSERT INTO settings (key, value) VALUES ('signing-key', 'the-key')`).run();
  db.prepare(`INSERT INTO participants (call_id, id, is_bot, doc) VALUES ('quiet', 'p1', 0, '{}')`).run();
  db.pragma('user_version = 6');
  db.close();
}

/**
 * A version 7 file as that version wrote it: the same calls and facts as the version 6 file (the
 * 'ended' fact of 'gone' refers to its resource), plus 'purged': a call already purged whose
 * delivered 'ended' fact still refers to its resource (rid 5, the highest rid handed out).
 */
function writeV7Store(dir: string): void {
  const db = new Database(join(dir, 'callkeeper.db'));
  db.pragma('journal_mode = WAL');
  db.exec(V7_DDL);
  const call = db.prepare(
    `INSERT INTO calls (rid, id, app_id, tenant_id, state, direction, created_at, last_keepalive_at, deadline, check_at, establish_at,
       ended_at, result_code, result_subcode, result_message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const resource = db.prepare('INSERT INTO call_resources (rid, resource) VALUES (?, ?)');
  const live = (rid: number, id: string, state: string, direction: string, deadline: number, checkAt: number, kept: number | null) => {
    call.run(rid, id, OWNER.appId, OWNER.tenantId, state, direction, T0, kept, deadline, checkAt, null, null, null, null, null);
    resource.run(rid, JSON.stringify(resourceOf(id, direction)));
  };
  live(1, 'kept', 'established', 'outgoing', T0 + 60_000, T0 + 30_000, T0 + 30_000);
  live(2, 'quiet', 'established', 'outgoing', T0 + 45_000, T0 + 45_000, null);
  live(3, 'ringing', 'incoming', 'incoming', T0 + 50_000, T0 + 50_000, null);
  for (const [rid, id] of [
    [4, 'gone'],
    [5, 'purged'],
  ] as const) {
    call.run(
      rid,
      id,
      OWNER.appId,
      OWNER.tenantId,
      'terminated',
      'outgoing',
      T0,
      null,
      null,
      null,
      null,
      T0 + 10_000,
      0,
      5000,
      'ended by the test',
    );
    resource.run(rid, JSON.stringify(resourceOf(id, 'outgoing')));
  }
  // Purged as version 7 purged: the call row goes, its resource stays while a fact refers to it.
  db.prepare(`DELETE FROM calls WHERE id = 'purged'`).run();
  const fact = db.prepare(
    `INSERT INTO outbox (seq, call_id, app_id, tenant_id, callback_uri, transition, result, snapshot, created_at, status, attempts,
       next_attempt_at, last_status, delivered_at, resource_rid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const ended = JSON.stringify({ code: 0, subcode: 5000, message: 'ended by the test' });
  const referring = JSON.stringify({ direction: 'outgoing', state: 'terminated' });
  const cb = (id: string) => `http://127.0.0.1:9/cb/${id}`;
  const created = JSON.stringify({
    id: 'gone',
    owner: OWNER,
    direction: 'outgoing',
    state: 'establishing',
    resource: resourceOf('gone', 'outgoing'),
  });
  fact.run(1, 'gone', OWNER.appId, OWNER.tenantId, cb('gone'), 'created', null, created, T0, 'delivered', 1, null, 202, T0 + 5, null);
  db.prepare(
    `INSERT INTO delivery_attempts (seq, attempt, at, status_code, latency_ms, error, outcome) VALUES (1, 1, ?, 202, 1.5, NULL, 'delivered')`,
  ).run(T0 + 5);
  fact.run(
    2,
    'gone',
    OWNER.appId,
    OWNER.tenantId,
    cb('gone'),
    'ended',
    ended,
    referring,
    T0 + 10_000,
    'pending',
    0,
    T0 + 10_000,
    null,
    null,
    4,
  );
  fact.run(
    3,
    'purged',
    OWNER.appId,
    OWNER.tenantId,
    cb('purged'),
    'ended',
    ended,
    referring,
    T0 + 10_000,
    'delivered',
    1,
    null,
    202,
    T0 + 10_005,
    5,
  );
  db.prepare('UPDATE outbox_stats SET pending = 1 WHERE id = 1').run();
  db.prepare(`INSERT INTO settings (key, value) VALUES ('signing-key', 'the-key')`).run();
  db.prepare(`INSERT INTO participants (call_id, id, is_bot, doc) VALUES ('quiet', 'p1', 0, '{}')`).run();
  db.pragma('user_version = 7');
  db.close();
}

/**
 * What a migrated file must give: every call with its state, deadline, last keepAlive and
 * resource, the outbox with its attempts and references, settings and the roster; then keepAlive,
 * expiry, claims, create and purge work on it, and it opens again unchanged. `highestRid`: the
 * highest rid the old file had handed out (a new call must get a higher one).
 */
async function checkMigrated(dir: string, highestRid: number): Promise<void> {
  const store = new SqliteCallStore({ dataDir: dir });
  try {
    new SqliteBotActionStore(store); // what the server opens beside it: its trigger comes back
    // Every call, with its state, deadline and resource.
    const kept = await store.get('kept');
    assert.equal(kept?.state, 'established');
    assert.equal(kept?.deadline, T0 + 60_000);
    assert.equal(kept?.lastKeepAliveAt, T0 + 30_000);
    assert.deepEqual(kept?.resource, resourceOf('kept', 'outgoing'));
    assert.equal((await store.get('quiet'))?.deadline, T0 + 45_000);
    assert.deepEqual((await store.get('ringing'))?.resource, resourceOf('ringing', 'incoming'));
    const gone = await store.get('gone');
    assert.equal(gone?.endedAt, T0 + 10_000);
    assert.deepEqual(gone?.resultInfo, { code: 0, subcode: 5000, message: 'ended by the test' });
    assert.deepEqual(await store.counts(), { active: 3, ended: 1 });
    assert.equal((await store.list({ state: 'active', limit: 10 })).calls.map((c) => c.id).join(), 'kept,quiet,ringing');
    assert.equal(await store.getSetting('signing-key'), 'the-key');
    // The outbox: the delivered fact with its attempt, the pending one claimable with its whole snapshot.
    const log = await store.listDeliveries({ callId: 'gone', limit: 10 });
    assert.deepEqual(
      log.map((e) => [e.seq, e.status, e.attemptLog.length]),
      [
        [2, 'pending', 0],
        [1, 'delivered', 1],
      ],
    );
    // A purged call's fact still has its call's resource (version 7 files only have one).
    assert.deepEqual(
      (await store.listDeliveries({ callId: 'purged', limit: 10 })).map((e) =>
        e.fact.transition === 'ended' ? [e.status, e.fact.snapshot.resource] : [],
      ),
      highestRid === 5 ? [['delivered', resourceOf('purged', 'outgoing')]] : [],
    );
    assert.deepEqual(await store.outboxStats(), { pending: 1, overflowed: 0 });
    assert.equal(await store.nextDeliveryAt(), T0 + 10_000);
    const [due] = await store.claimDeliveries(T0 + 20_000, 10, T0 + 31_000);
    assert.equal(due?.seq, 2);
    assert.ok(due && due.fact.transition === 'ended');
    assert.deepEqual(due.fact.snapshot, {
      id: 'gone',
      owner: OWNER,
      direction: 'outgoing',
      state: 'terminated',
      resource: resourceOf('gone', 'outgoing'),
    });
    assert.deepEqual(due.fact.result, { code: 0, subcode: 5000, message: 'ended by the test' });
    assert.deepEqual(
      await store.finishDelivery(
        2,
        due.lease,
        { attempt: 1, at: T0 + 20_001, statusCode: 202, latencyMs: 1, error: null, outcome: 'delivered' },
        { status: 'delivered' },
      ),
      { ok: true },
    );

    // keepAlive and expiry on the migrated rows: 'kept' (check_at behind its deadline) survives the
    // sweep at its old check, 'quiet' and 'ringing' end at their deadlines with their facts queued.
    assert.deepEqual(await store.keepAlive('kept', OWNER, T0 + 40_000, T0 + 100_000), { ok: true, value: undefined });
    // Only the owner's live call is kept alive: not an ended one, not another app's.
    assert.deepEqual(await store.keepAlive('gone', OWNER, T0 + 40_000, T0 + 100_000), { ok: false, reason: 'notFound' });
    assert.deepEqual(await store.keepAlive('quiet', { ...OWNER, appId: 'app-2' }, T0 + 40_000, T0 + 100_000), {
      ok: false,
      reason: 'notFound',
    });
    assert.deepEqual(await store.expireDue(T0 + 40_000, 100, results), []);
    const ended = await store.expireDue(T0 + 60_000, 100, results);
    assert.deepEqual(
      ended.map((c) => [c.id, c.endedAt]),
      [
        ['quiet', T0 + 45_000],
        ['ringing', T0 + 50_000],
      ],
    );
    assert.deepEqual(ended[1]?.resource, resourceOf('ringing', 'incoming'), 'an incoming call ends with its resource');
    assert.equal((await store.get('kept'))?.deadline, T0 + 100_000);
    assert.equal((await store.get('kept'))?.lastKeepAliveAt, T0 + 40_000);
    assert.equal((await store.get('quiet'))?.deadline, null);
    const facts = await store.claimDeliveries(T0 + 60_000, 10, T0 + 71_000);
    assert.deepEqual(
      facts.map((e) => (e.fact.transition === 'ended' ? [e.callId, e.fact.snapshot.state, e.fact.snapshot.resource] : [])),
      [
        ['quiet', 'terminated', resourceOf('quiet', 'outgoing')],
        ['ringing', 'terminated', resourceOf('ringing', 'incoming')],
      ],
    );
    // New calls get rids after the migrated ones; a purge takes a migrated call's roster with it.
    await store.create({
      id: 'new',
      owner: OWNER,
      state: 'establishing',
      direction: 'outgoing',
      createdAt: T0 + 60_000,
      deadline: T0 + 90_000,
      establishAt: null,
      resource: { a: 1 },
    });
    assert.equal((await store.list({ limit: 10 })).calls.at(-1)?.id, 'new');
    assert.equal(await store.purgeEnded(T0 + 50_000, 100), 3);
    const raw = new Database(join(dir, 'callkeeper.db'), { readonly: true });
    try {
      assert.equal(raw.pragma('user_version', { simple: true }), 8);
      assert.equal(raw.prepare(`SELECT count(*) FROM participants WHERE call_id = 'quiet'`).pluck().get(), 0);
      assert.equal(raw.prepare(`SELECT count(*) FROM sqlite_master WHERE name IN ('calls_v6', 'calls_v7')`).pluck().get(), 0);
      // A rid is never handed out twice, across the migration too (a fact may refer to a purged call's).
      assert.ok((raw.prepare(`SELECT rid FROM calls WHERE id = 'new'`).pluck().get() as number) > highestRid);
      // Every call left has its hot row, and only those.
      assert.equal(raw.prepare('SELECT group_concat(id) FROM (SELECT id FROM call_hot ORDER BY id)').pluck().get(), 'kept,new');
    } finally {
      raw.close();
    }
  } finally {
    await store.close();
  }
  // And it opens again as a version 8 store, unchanged.
  const again = new SqliteCallStore({ dataDir: dir });
  assert.deepEqual(await again.counts(), { active: 2, ended: 0 });
  await again.close();
}

for (const [version, write, highestRid] of [
  [6, writeV6Store, 4],
  [7, writeV7Store, 5],
] as const)
  test(`a version ${version} store opens under version 8 with every call, deadline and outbox entry, and keeps working`, async () => {
    const dir = tempDir();
    try {
      write(dir.path);
      await checkMigrated(dir.path, highestRid);
    } finally {
      dir.remove();
    }
  });

test('a store of an unknown or newer schema version is refused, with what to do, and left as it was', async () => {
  for (const [version, why] of [
    [
      9,
      /written by a newer version of callkeeper \(schema 9; this one reads 8 and migrates 6 and 7\); use that version, or start with an empty --data directory/,
    ],
    [5, /written by an older pre-release of callkeeper \(schema 5; this one reads 8 and migrates only 6 and 7\)/],
  ] as const) {
    const dir = tempDir();
    try {
      const db = new Database(join(dir.path, 'callkeeper.db'));
      db.exec('CREATE TABLE calls (rid INTEGER PRIMARY KEY, resource TEXT)');
      db.pragma(`user_version = ${version}`);
      db.close();
      assert.throws(() => new SqliteCallStore({ dataDir: dir.path }), why);
      const after = new Database(join(dir.path, 'callkeeper.db'), { readonly: true });
      assert.equal(after.pragma('user_version', { simple: true }), version);
      assert.equal(after.prepare(`SELECT count(*) FROM sqlite_master WHERE name IN ('call_resources', 'call_hot')`).pluck().get(), 0);
      after.close();
    } finally {
      dir.remove();
    }
  }
});

test("an ended call's fact keeps the call's resource after the call is purged, and the resource goes with the last fact", async () => {
  const dir = tempDir();
  const store = new SqliteCallStore({ dataDir: dir.path });
  const raw = new Database(join(dir.path, 'callkeeper.db'), { readonly: true });
  const resources = () => raw.prepare('SELECT count(*) FROM call_resources').pluck().get();
  try {
    const deliver = async (now: number) => {
      for (const e of await store.claimDeliveries(now, 100, now + 10_000))
        await store.finishDelivery(
          e.seq,
          e.lease,
          { attempt: 1, at: now, statusCode: 202, latencyMs: 1, error: null, outcome: 'delivered' },
          { status: 'delivered' },
        );
    };
    for (const id of ['by-api', 'by-sweep'])
      await store.create({
        id,
        owner: OWNER,
        state: 'established',
        direction: 'outgoing',
        createdAt: T0,
        deadline: T0 + 1_000,
        establishAt: null,
        resource: resourceOf(id, 'outgoing'),
      });
    await deliver(T0); // the created facts
    assert.equal((await store.end('by-api', OWNER, T0 + 500, { code: 0, subcode: 0, message: 'hung up' })).ok, true);
    assert.equal((await store.expireDue(T0 + 1_000, 100, results)).length, 1);
    // Both calls purged while their ended facts are still pending (a bot that does not answer).
    assert.equal(await store.purgeEnded(T0 + 2_000, 100), 2);
    assert.equal(await store.get('by-api'), undefined);
    assert.equal(resources(), 2, 'the resources stay while facts refer to them');
    const facts = await store.claimDeliveries(T0 + 3_000, 100, T0 + 13_000);
    assert.deepEqual(
      facts.map((e) => (e.fact.transition === 'ended' ? [e.callId, e.fact.snapshot.resource] : [])),
      [
        ['by-api', resourceOf('by-api', 'outgoing')],
        ['by-sweep', resourceOf('by-sweep', 'outgoing')],
      ],
    );
    for (const e of facts)
      await store.finishDelivery(
        e.seq,
        e.lease,
        { attempt: 1, at: T0 + 3_000, statusCode: 202, latencyMs: 1, error: null, outcome: 'delivered' },
        { status: 'delivered' },
      );
    // The delivered facts are purged in turn, and the resources with them.
    await store.purgeEnded(T0 + 5_000, 100);
    assert.equal(raw.prepare('SELECT count(*) FROM outbox').pluck().get(), 0);
    assert.equal(resources(), 0);
    // A call that is still there keeps its resource when its facts are purged.
    await store.create({
      id: 'stays',
      owner: OWNER,
      state: 'established',
      direction: 'outgoing',
      createdAt: T0 + 5_000,
      deadline: T0 + 90_000,
      establishAt: null,
      resource: { k: 1 },
    });
    await deliver(T0 + 5_000);
    await store.purgeEnded(T0 + 6_000, 100);
    assert.deepEqual((await store.get('stays'))?.resource, { k: 1 });
  } finally {
    raw.close();
    await store.close();
    dir.remove();
  }
});

// Version 7 writes one index fewer per fact (outbox_pending_by_call is gone): a call's pending
// entries are found through outbox_by_call, never by reading every pending entry.
test("a call's pending outbox entries are found through its own index, on a migrated store too", async () => {
  const dir = tempDir();
  try {
    writeV6Store(dir.path);
    await new SqliteCallStore({ dataDir: dir.path }).close();
    const db = new Database(join(dir.path, 'callkeeper.db'), { readonly: true });
    try {
      const plan = (sql: string) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('c1') as { detail: string }[]).map((r) => r.detail).join('; ');
      for (const sql of [
        `SELECT 1 FROM outbox WHERE call_id = ? AND status = 'pending' LIMIT 1`,
        `SELECT count(*) FROM outbox WHERE call_id = ? AND status = 'pending'`,
        `SELECT min(seq) FROM outbox WHERE call_id = ? AND status = 'pending'`,
      ])
        assert.match(plan(sql), /SEARCH outbox USING (COVERING )?INDEX outbox_by_call \(call_id=\?\)/, sql);
      assert.equal(db.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'outbox_pending_by_call'`).pluck().get(), 0);
    } finally {
      db.close();
    }
  } finally {
    dir.remove();
  }
});
