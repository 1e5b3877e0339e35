import type Database from 'better-sqlite3';
import type { CallNotification } from '../calls/call-notifications.js';
import type { CallOwner, CallRecord, CallState } from '../calls/call-types.js';
import {
  callUpdateNotification,
  OPERATION_RESULTS,
  type OperationEffects,
  type OperationRecord,
  operationNotification,
  queuedAfter,
  silencedRecording,
  stoppedByTone,
} from '../calls/operations.js';
import { type NewParticipant, type ParticipantPatch, type ParticipantRecord, rosterNotification } from '../calls/participants.js';
import type { BotActionStore, CallScope, OperationStart, Tagged, TonesOutcome } from './bot-action-store.js';
import type { SqliteCallStore } from './sqlite-store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS participants (
  call_id TEXT NOT NULL,
  id TEXT NOT NULL,
  is_bot INTEGER NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (call_id, id)
);
CREATE TABLE IF NOT EXISTS operations (
  call_id TEXT NOT NULL,
  id TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  due_at INTEGER,
  doc TEXT NOT NULL,
  PRIMARY KEY (call_id, id)
);
CREATE INDEX IF NOT EXISTS operations_due ON operations(due_at) WHERE due_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS call_media (
  call_id TEXT PRIMARY KEY,
  tone_subscribed INTEGER NOT NULL DEFAULT 0,
  tone_sequence INTEGER NOT NULL DEFAULT 0,
  source_sequence INTEGER NOT NULL DEFAULT 0,
  roster_seeded INTEGER NOT NULL DEFAULT 0
);
-- A call's roster, operations and media state go with it when the call store purges it, in the
-- same statement: no sweep over these tables.
CREATE TRIGGER IF NOT EXISTS bot_actions_follow_calls AFTER DELETE ON calls BEGIN
  DELETE FROM participants WHERE call_id = OLD.id;
  DELETE FROM operations WHERE call_id = OLD.id;
  DELETE FROM call_media WHERE call_id = OLD.id;
END;
`;

interface LiveCall {
  id: string;
  owner: CallOwner;
  state: CallState;
  resource: Record<string, unknown>;
}

interface CallRow {
  id: string;
  app_id: string;
  tenant_id: string;
  state: string;
  resource: string;
}

const refuse = <T>(reason: 'callNotFound' | 'participantNotFound' | 'operationNotFound' | 'isBot'): Tagged<T> => ({ ok: false, reason });
const ok = <T>(value: T): Tagged<T> => ({ ok: true, value });

/**
 * The bot-action tables live in the call store's SQLite file, so a change and the
 * notifications it queues (into the call store's outbox) commit in one transaction.
 */
export class SqliteBotActionStore implements BotActionStore {
  private readonly db: Database.Database;
  private readonly s;

  constructor(private readonly calls: SqliteCallStore) {
    this.db = calls.database;
    this.db.exec(SCHEMA);
    const db = this.db;
    this.s = {
      // The resource lives apart from the call's hot row (sqlite-schema.ts).
      live: db.prepare(
        `SELECT c.id, c.app_id, c.tenant_id, c.state, r.resource
         FROM call_hot h JOIN calls c ON c.rid = h.rid JOIN call_resources r ON r.rid = h.rid WHERE h.id = ? AND h.deadline > ?`,
      ),
      setState: db.prepare('UPDATE calls SET state = ? WHERE rid = (SELECT rid FROM call_hot WHERE id = ? AND deadline > ?)'),
      roster: db.prepare('SELECT doc FROM participants WHERE call_id = ? ORDER BY rowid').pluck(),
      participant: db.prepare('SELECT doc FROM participants WHERE call_id = ? AND id = ?').pluck(),
      bot: db.prepare('SELECT doc FROM participants WHERE call_id = ? AND is_bot = 1').pluck(),
      insertParticipant: db.prepare('INSERT OR IGNORE INTO participants (call_id, id, is_bot, doc) VALUES (?, ?, ?, ?)'),
      updateParticipant: db.prepare('UPDATE participants SET doc = ? WHERE call_id = ? AND id = ?'),
      deleteParticipant: db.prepare('DELETE FROM participants WHERE call_id = ? AND id = ?'),
      media: db.prepare('INSERT INTO call_media (call_id) VALUES (?) ON CONFLICT(call_id) DO NOTHING'),
      nextSource: db
        .prepare('UPDATE call_media SET source_sequence = source_sequence + 1 WHERE call_id = ? RETURNING source_sequence')
        .pluck(),
      markSeeded: db.prepare('UPDATE call_media SET roster_seeded = 1 WHERE call_id = ? AND roster_seeded = 0'),
      subscribe: db.prepare('UPDATE call_media SET tone_subscribed = ? WHERE call_id = ?'),
      toneState: db.prepare('SELECT tone_subscribed FROM call_media WHERE call_id = ?').pluck(),
      nextTone: db.prepare('UPDATE call_media SET tone_sequence = tone_sequence + 1 WHERE call_id = ? RETURNING tone_sequence').pluck(),
      insertOp: db.prepare('INSERT INTO operations (call_id, id, kind, status, due_at, doc) VALUES (?, ?, ?, ?, ?, ?)'),
      updateOp: db.prepare('UPDATE operations SET status = ?, due_at = ?, doc = ? WHERE call_id = ? AND id = ?'),
      op: db.prepare('SELECT doc FROM operations WHERE call_id = ? AND id = ?').pluck(),
      ops: db.prepare('SELECT doc FROM operations WHERE call_id = ? ORDER BY rowid').pluck(),
      runningMedia: db
        .prepare(
          `SELECT doc FROM operations WHERE call_id = ? AND status = 'running' AND kind IN ('playPrompt', 'recordResponse') ORDER BY rowid`,
        )
        .pluck(),
      due: db.prepare('SELECT call_id, doc FROM operations WHERE due_at <= ? ORDER BY due_at, rowid LIMIT ?'),
      nextDue: db.prepare('SELECT min(due_at) FROM operations WHERE due_at IS NOT NULL').pluck(),
    };
  }

  // ---- helpers, all synchronous so that they compose inside one transaction ----

  /** The call's media operations still running, oldest first. */
  private runningMedia(callId: string): OperationRecord[] {
    return (this.s.runningMedia.all(callId) as string[]).map((d) => JSON.parse(d) as OperationRecord);
  }

  private live(scope: CallScope): LiveCall | undefined {
    const row = this.s.live.get(scope.callId, scope.now) as CallRow | undefined;
    if (!row) return undefined;
    if (scope.owner && (row.app_id !== scope.owner.appId || row.tenant_id !== scope.owner.tenantId)) return undefined;
    return {
      id: row.id,
      owner: { appId: row.app_id, tenantId: row.tenant_id },
      state: row.state as CallState,
      resource: JSON.parse(row.resource) as Record<string, unknown>,
    };
  }

  private rosterOf(callId: string): ParticipantRecord[] {
    return (this.s.roster.all(callId) as string[]).map((d) => JSON.parse(d) as ParticipantRecord);
  }

  private notify(call: LiveCall, notifications: CallNotification[], now: number): void {
    if (notifications.length) this.calls.enqueueWithin(call, notifications, now);
  }

  private insertPeople(call: LiveCall, people: NewParticipant[]): number {
    this.s.media.run(call.id);
    let added = 0;
    for (const p of people) {
      if (this.s.participant.get(call.id, p.id) !== undefined) continue;
      const sourceId = String(this.s.nextSource.get(call.id));
      const record: ParticipantRecord = { ...p, callId: call.id, sourceId };
      added += this.s.insertParticipant.run(call.id, p.id, p.isBot ? 1 : 0, JSON.stringify(record)).changes;
    }
    return added;
  }

  private patchParticipant(call: LiveCall, id: string | 'bot', patch: ParticipantPatch, now: number): Tagged<ParticipantRecord> {
    const doc = (id === 'bot' ? this.s.bot.get(call.id) : this.s.participant.get(call.id, id)) as string | undefined;
    if (doc === undefined) return refuse('participantNotFound');
    const before = JSON.parse(doc) as ParticipantRecord;
    const after: ParticipantRecord = { ...before, ...patch };
    if (JSON.stringify(after) !== doc) {
      this.s.updateParticipant.run(JSON.stringify(after), call.id, before.id);
      this.notify(call, [rosterNotification(this.rosterOf(call.id))], now);
    }
    return ok(after);
  }

  private saveOp(op: OperationRecord): void {
    this.s.updateOp.run(op.status, op.dueAt, JSON.stringify(op), op.callId, op.id);
  }

  private finish(
    call: LiveCall,
    op: OperationRecord,
    status: 'completed' | 'failed',
    result: OperationRecord['result'],
    now: number,
  ): OperationRecord {
    const done: OperationRecord = { ...op, status, resultInfo: result, dueAt: null, completedAt: now };
    this.saveOp(done);
    this.notify(call, [operationNotification(done)], now);
    return done;
  }

  // ---- the port ----

  async seedRoster(call: CallRecord, people: NewParticipant[], now: number): Promise<boolean> {
    return this.db.transaction(() => {
      const live = this.live({ callId: call.id, owner: null, now });
      if (!live) return false;
      this.s.media.run(live.id);
      // Once only: people who left since must not come back.
      if (this.s.markSeeded.run(live.id).changes === 0) return false;
      if (this.insertPeople(live, people) === 0) return false;
      this.notify(live, [rosterNotification(this.rosterOf(live.id))], now);
      return true;
    })();
  }

  async roster(scope: CallScope): Promise<Tagged<ParticipantRecord[]>> {
    return this.live(scope) ? ok(this.rosterOf(scope.callId)) : refuse('callNotFound');
  }

  async participant(scope: CallScope, participantId: string): Promise<Tagged<ParticipantRecord>> {
    if (!this.live(scope)) return refuse('callNotFound');
    const doc = this.s.participant.get(scope.callId, participantId) as string | undefined;
    return doc === undefined ? refuse('participantNotFound') : ok(JSON.parse(doc) as ParticipantRecord);
  }

  async join(scope: CallScope, people: NewParticipant[]): Promise<Tagged<ParticipantRecord[]>> {
    return this.db.transaction((): Tagged<ParticipantRecord[]> => {
      const call = this.live(scope);
      if (!call) return refuse('callNotFound');
      this.insertPeople(call, people);
      const roster = this.rosterOf(call.id);
      this.notify(call, [rosterNotification(roster)], scope.now);
      return ok(roster);
    })();
  }

  async updateParticipant(scope: CallScope, participantId: string | 'bot', patch: ParticipantPatch): Promise<Tagged<ParticipantRecord>> {
    return this.db.transaction((): Tagged<ParticipantRecord> => {
      const call = this.live(scope);
      if (!call) return refuse('callNotFound');
      return this.patchParticipant(call, participantId, patch, scope.now);
    })();
  }

  async leave(scope: CallScope, participantId: string): Promise<Tagged<ParticipantRecord>> {
    return this.db.transaction((): Tagged<ParticipantRecord> => {
      const call = this.live(scope);
      if (!call) return refuse('callNotFound');
      const doc = this.s.participant.get(call.id, participantId) as string | undefined;
      if (doc === undefined) return refuse('participantNotFound');
      const who = JSON.parse(doc) as ParticipantRecord;
      if (who.isBot) return refuse('isBot');
      this.s.deleteParticipant.run(call.id, participantId);
      this.notify(call, [rosterNotification(this.rosterOf(call.id))], scope.now);
      return ok(who);
    })();
  }

  async startOperation(scope: CallScope, op: OperationRecord, start: OperationStart): Promise<Tagged<OperationRecord>> {
    return this.db.transaction((): Tagged<OperationRecord> => {
      const call = this.live(scope);
      if (!call) return refuse('callNotFound');
      const stored = start.queued ? queuedAfter(op, this.runningMedia(call.id), scope.now) : op;
      this.s.insertOp.run(call.id, stored.id, stored.kind, stored.status, stored.dueAt, JSON.stringify(stored));
      this.s.media.run(call.id);
      if (start.toneSubscribed !== undefined) this.s.subscribe.run(start.toneSubscribed ? 1 : 0, call.id);
      if (start.callState) {
        this.s.setState.run(start.callState, call.id, scope.now);
        this.notify(call, [callUpdateNotification(call.id, start.callState)], scope.now);
      }
      if (start.notifyCompletion) this.notify(call, [operationNotification(stored)], scope.now);
      if (start.botPatch) this.patchParticipant(call, 'bot', start.botPatch, scope.now);
      return ok(stored);
    })();
  }

  async operation(scope: CallScope, operationId: string): Promise<Tagged<OperationRecord>> {
    if (!this.live(scope)) return refuse('callNotFound');
    const doc = this.s.op.get(scope.callId, operationId) as string | undefined;
    return doc === undefined ? refuse('operationNotFound') : ok(JSON.parse(doc) as OperationRecord);
  }

  async operations(scope: CallScope): Promise<Tagged<OperationRecord[]>> {
    if (!this.live(scope)) return refuse('callNotFound');
    return ok((this.s.ops.all(scope.callId) as string[]).map((d) => JSON.parse(d) as OperationRecord));
  }

  async runDue(now: number, limit: number): Promise<{ op: OperationRecord; ran: OperationEffects }[]> {
    return this.db.transaction(() => {
      const out: { op: OperationRecord; ran: OperationEffects }[] = [];
      for (const row of this.s.due.all(now, limit) as { call_id: string; doc: string }[]) {
        const op = JSON.parse(row.doc) as OperationRecord;
        // A step is stamped at its own moment, however late the sweep runs.
        const at = op.dueAt ?? now;
        const call = this.live({ callId: row.call_id, owner: null, now: at });
        if (!call) {
          this.saveOp({ ...op, dueAt: null });
          continue;
        }
        const ran = op.effects;
        if (ran.join?.length) {
          this.insertPeople(call, ran.join);
          this.notify(call, [rosterNotification(this.rosterOf(call.id))], at);
        }
        if (ran.callState) {
          this.s.setState.run(ran.callState, call.id, at);
          this.notify(call, [callUpdateNotification(call.id, ran.callState)], at);
        }
        let after: OperationRecord;
        if (ran.next) {
          after = { ...op, dueAt: at + ran.next.afterMs, effects: ran.next.effects };
          this.saveOp(after);
        } else {
          const done: OperationRecord = { ...op, status: 'completed', resultInfo: op.result, dueAt: null, completedAt: at };
          this.saveOp(done);
          // transfer has no operation id on Graph's side: its outcome is the call's own notifications.
          if (op.kind !== 'transfer') this.notify(call, [operationNotification(done)], at);
          after = done;
        }
        out.push({ op: after, ran });
      }
      return out;
    })();
  }

  async nextDueAt(): Promise<number | undefined> {
    return (this.s.nextDue.get() as number | null) ?? undefined;
  }

  async cancelMedia(scope: CallScope): Promise<Tagged<OperationRecord[]>> {
    return this.db.transaction((): Tagged<OperationRecord[]> => {
      const call = this.live(scope);
      if (!call) return refuse('callNotFound');
      return ok(this.runningMedia(call.id).map((op) => this.finish(call, op, 'failed', OPERATION_RESULTS.canceled, scope.now)));
    })();
  }

  async tones(scope: CallScope, tones: string[]): Promise<Tagged<TonesOutcome>> {
    return this.db.transaction((): Tagged<TonesOutcome> => {
      const call = this.live(scope);
      if (!call) return refuse('callNotFound');
      this.s.media.run(call.id);
      const subscribed = this.s.toneState.get(call.id) === 1;
      const outcome: TonesOutcome = { notified: 0, stopped: [] };
      for (const tone of tones) {
        if (subscribed) {
          const sequenceId = this.s.nextTone.get(call.id) as number;
          this.notify(
            call,
            [callUpdateNotification(call.id, call.state, { toneInfo: { '@odata.type': '#microsoft.graph.toneInfo', sequenceId, tone } })],
            scope.now,
          );
          outcome.notified++;
        }
        for (const op of this.runningMedia(call.id)) {
          const stopped = stoppedByTone(op, tone, scope.now);
          if (stopped) outcome.stopped.push(this.finish(call, stopped, 'completed', OPERATION_RESULTS.stopTone, scope.now));
        }
      }
      return ok(outcome);
    })();
  }

  async silence(scope: CallScope): Promise<Tagged<OperationRecord[]>> {
    return this.db.transaction((): Tagged<OperationRecord[]> => {
      const call = this.live(scope);
      if (!call) return refuse('callNotFound');
      const changed: OperationRecord[] = [];
      for (const op of this.runningMedia(call.id)) {
        const next = silencedRecording(op, scope.now);
        if (!next) continue;
        this.saveOp(next);
        changed.push(next);
      }
      return ok(changed);
    })();
  }
}
