import type { CallNotification } from '../../calls/call-notifications.js';
import type { CallOwner, CallRecord, CallState } from '../../calls/call-types.js';
import {
  callUpdateNotification,
  OPERATION_RESULTS,
  type OperationEffects,
  type OperationRecord,
  operationNotification,
  queuedAfter,
  silencedRecording,
  stoppedByTone,
} from '../../calls/operations.js';
import { type NewParticipant, type ParticipantPatch, type ParticipantRecord, rosterNotification } from '../../calls/participants.js';
import type { BotActionRefusal, BotActionStore, CallScope, OperationStart, Tagged, TonesOutcome } from '../bot-action-store.js';
import { StoreUnavailableError } from '../store-errors.js';
import type { RedisShared, RedisStore } from './redis-store.js';

/** A call's media state: one JSON field of its bot-action hash. */
interface Media {
  seeded: boolean;
  toneSubscribed: boolean;
  toneSequence: number;
  sourceSequence: number;
  /** How many operations the call ever had: each one's ordinal keeps "oldest first". */
  operations: number;
}

/** What one read gave: the call's fields the decisions need, and its bot-action state. */
interface Snapshot {
  call: { id: string; owner: CallOwner; state: CallState; deadline: string } | undefined;
  version: number;
  media: Media;
  roster: ParticipantRecord[];
  /** Oldest first. */
  ops: OperationRecord[];
  ordinals: Map<string, number>;
}

/** Where the commit checks the call: live at `liveAt` for `owner`, and/or unchanged since read. */
interface Guard {
  owner: CallOwner | null;
  liveAt: number | null;
  state: boolean;
  deadline: boolean;
}

const NO_MEDIA: Media = { seeded: false, toneSubscribed: false, toneSequence: 0, sourceSequence: 0, operations: 0 };
const MEDIA_OPS = new Set(['playPrompt', 'recordResponse']);
/** Commits that lost a race read again; this many losses in a row is a store in trouble. */
const MAX_ATTEMPTS = 200;

const refuse = <T>(reason: BotActionRefusal): Tagged<T> => ({ ok: false, reason });
const ok = <T>(value: T): Tagged<T> => ({ ok: true, value });
const dueMember = (callId: string, opId: string) => `${callId}|${opId}`;

/**
 * One call's change, computed in TypeScript from a snapshot and written by bot-commit.lua in one
 * step: the hash fields, the operations' place in the shard's due set, the call's new state and
 * the notifications, in the order the domain queued them.
 */
class Change {
  readonly fields = new Map<string, string>();
  readonly due = new Map<string, number | null>();
  readonly notes: { at: number; notification: CallNotification }[] = [];
  state: CallState | undefined;

  constructor(private readonly snap: Snapshot) {}

  get empty(): boolean {
    return this.fields.size === 0 && this.due.size === 0 && this.notes.length === 0 && this.state === undefined;
  }

  notify(notification: CallNotification, at: number): void {
    this.notes.push({ at, notification });
  }

  saveRoster(): void {
    this.fields.set('r', JSON.stringify(this.snap.roster));
  }

  saveMedia(): void {
    this.fields.set('m', JSON.stringify(this.snap.media));
  }

  /** Stores an operation (new or changed) as it is in the snapshot's list, and its dueAt. */
  saveOp(op: OperationRecord): void {
    const i = this.snap.ops.findIndex((o) => o.id === op.id);
    if (i >= 0) this.snap.ops[i] = op;
    else {
      this.snap.ops.push(op);
      this.snap.ordinals.set(op.id, ++this.snap.media.operations);
      this.saveMedia();
    }
    this.fields.set(`o:${op.id}`, JSON.stringify({ n: this.snap.ordinals.get(op.id), op }));
    this.due.set(dueMember(op.callId, op.id), op.dueAt);
  }
}

/**
 * The bot-action state on Redis (or a Redis Cluster), beside a RedisStore and in its shards: a
 * call's roster, operations and media state are one hash in the call's shard ({ck:<n>}:bot:<id>),
 * so a change, the call's state and the notifications it queues (into the call's outbox line)
 * commit in one script. What a change is, is decided here, in TypeScript, from one read; the
 * script (lua/bot-commit.lua) only writes it, compare-and-set on the call's bot-action version
 * (a lost race reads again). Running operations are in each shard's `botdue` sorted set by
 * dueAt; a due step is run by the caller whose commit moves it out of its place there, so two
 * instances never run the same step.
 */
export class RedisBotActionStore implements BotActionStore {
  private readonly r: RedisShared;
  /**
   * Changes to one call from this handle run one after another: a burst of them (100 joins at
   * once) would otherwise all read the same version and all but one lose each round. Races are
   * then only between instances.
   */
  private readonly lines = new Map<string, Promise<unknown>>();

  constructor(calls: RedisStore) {
    this.r = calls.shared;
  }

  // ---- reading and committing ----

  private key(callId: string, name: string): string {
    return `${this.r.prefix(this.r.shardOf(callId))}:${name}`;
  }

  private async load(callId: string): Promise<Snapshot> {
    const callKey = this.key(callId, `call:${callId}`);
    const botKey = this.key(callId, `bot:${callId}`);
    // One atomic read: both keys share the call's hash tag, so this works on a Cluster too.
    const replies = await this.r.command((c) =>
      c.multi().hmget(callKey, 'id', 'app', 'tenant', 'state', 'deadline').hgetall(botKey).exec(),
    );
    const [callReply, botReply] = (replies ?? []).map(([err, value]) => {
      if (err) throw err;
      return value;
    }) as [(string | null)[], Record<string, string>];
    const [id, app, tenant, state, deadline] = callReply;
    const call =
      id === null || id === undefined
        ? undefined
        : { id, owner: { appId: app ?? '', tenantId: tenant ?? '' }, state: state as CallState, deadline: deadline ?? '' };
    const ops: { n: number; op: OperationRecord }[] = [];
    for (const [field, value] of Object.entries(botReply)) {
      if (field.startsWith('o:')) ops.push(JSON.parse(value) as { n: number; op: OperationRecord });
    }
    ops.sort((a, b) => a.n - b.n);
    return {
      call,
      version: Number(botReply.v ?? 0),
      media: botReply.m ? { ...NO_MEDIA, ...(JSON.parse(botReply.m) as Partial<Media>) } : { ...NO_MEDIA },
      roster: botReply.r ? (JSON.parse(botReply.r) as ParticipantRecord[]) : [],
      ops: ops.map((o) => o.op),
      ordinals: new Map(ops.map((o) => [o.op.id, o.n])),
    };
  }

  private inLine<T>(callId: string, step: () => Promise<T>): Promise<T> {
    const next = (this.lines.get(callId) ?? Promise.resolve()).then(step, step);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.lines.set(callId, tail);
    void tail.then(() => {
      if (this.lines.get(callId) === tail) this.lines.delete(callId);
    });
    return next;
  }

  /** 1 committed, 0 the call is not live (or gone), -1 lost a race. */
  private async commit(callId: string, snap: Snapshot, guard: Guard, change: Change): Promise<number> {
    const sets = [...change.fields].flat();
    const due = [...change.due].flatMap(([member, at]) => [member, at === null ? '' : at]);
    const notes = change.notes.flatMap((n) => [n.at, JSON.stringify(n.notification)]);
    const r = await this.r.script(
      'bot-commit',
      this.r.shardOf(callId),
      callId,
      guard.owner?.appId ?? '',
      guard.owner?.tenantId ?? '',
      guard.liveAt ?? '',
      guard.state ? (snap.call?.state ?? '') : '*',
      guard.deadline ? (snap.call?.deadline ?? '') : '*',
      snap.version,
      change.state ?? '',
      change.fields.size,
      0,
      change.due.size,
      change.notes.length,
      ...sets,
      ...due,
      ...notes,
    );
    return Number(r);
  }

  /**
   * One scoped change: read, decide (`decide` fills the Change or refuses), commit if anything
   * changed; a lost race reads and decides again. The call must be live at scope.now for its
   * owner, and still in the state decided on (tones and updates are rendered with it).
   */
  private mutate<T>(scope: CallScope, decide: (snap: Snapshot, change: Change) => Tagged<T>): Promise<Tagged<T>> {
    return this.inLine(scope.callId, () => this.mutateNow(scope, decide));
  }

  private async mutateNow<T>(scope: CallScope, decide: (snap: Snapshot, change: Change) => Tagged<T>): Promise<Tagged<T>> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const snap = await this.load(scope.callId);
      if (!this.liveFor(snap, scope)) return refuse('callNotFound');
      const change = new Change(snap);
      const result = decide(snap, change);
      if (change.empty) return result;
      const r = await this.commit(scope.callId, snap, { owner: scope.owner, liveAt: scope.now, state: true, deadline: false }, change);
      if (r === 1) return result;
      if (r === 0) return refuse('callNotFound');
    }
    throw new StoreUnavailableError(`bot-action change on call ${scope.callId} lost ${MAX_ATTEMPTS} races in a row`);
  }

  private liveFor(snap: Snapshot, scope: CallScope): boolean {
    const c = snap.call;
    if (!c || c.deadline === '' || Number(c.deadline) <= scope.now) return false;
    return !scope.owner || (c.owner.appId === scope.owner.appId && c.owner.tenantId === scope.owner.tenantId);
  }

  private async read<T>(scope: CallScope, pick: (snap: Snapshot) => Tagged<T>): Promise<Tagged<T>> {
    const snap = await this.load(scope.callId);
    return this.liveFor(snap, scope) ? pick(snap) : refuse('callNotFound');
  }

  // ---- the domain's bookkeeping, as the SQLite store does it ----

  private insertPeople(snap: Snapshot, change: Change, people: NewParticipant[]): number {
    let added = 0;
    for (const p of people) {
      if (snap.roster.some((q) => q.id === p.id)) continue;
      snap.media.sourceSequence++;
      snap.roster.push({ ...p, callId: snap.call?.id ?? p.callId, sourceId: String(snap.media.sourceSequence) });
      added++;
    }
    if (added) {
      change.saveRoster();
      change.saveMedia();
    }
    return added;
  }

  private patchParticipant(
    snap: Snapshot,
    change: Change,
    id: string | 'bot',
    patch: ParticipantPatch,
    at: number,
  ): Tagged<ParticipantRecord> {
    const i = snap.roster.findIndex((p) => (id === 'bot' ? p.isBot : p.id === id));
    const before = snap.roster[i];
    if (!before) return refuse('participantNotFound');
    const after: ParticipantRecord = { ...before, ...patch };
    if (JSON.stringify(after) !== JSON.stringify(before)) {
      snap.roster[i] = after;
      change.saveRoster();
      change.notify(rosterNotification(snap.roster), at);
    }
    return ok(after);
  }

  private finish(
    change: Change,
    op: OperationRecord,
    status: 'completed' | 'failed',
    result: OperationRecord['result'],
    at: number,
  ): OperationRecord {
    const done: OperationRecord = { ...op, status, resultInfo: result, dueAt: null, completedAt: at };
    change.saveOp(done);
    change.notify(operationNotification(done), at);
    return done;
  }

  private runningMedia(snap: Snapshot): OperationRecord[] {
    return snap.ops.filter((o) => o.status === 'running' && MEDIA_OPS.has(o.kind));
  }

  // ---- the port ----

  async seedRoster(call: CallRecord, people: NewParticipant[], now: number): Promise<boolean> {
    const r = await this.mutate({ callId: call.id, owner: null, now }, (snap, change) => {
      // Once only: people who left since must not come back.
      if (snap.media.seeded) return ok(false);
      snap.media.seeded = true;
      change.saveMedia();
      if (this.insertPeople(snap, change, people) === 0) return ok(false);
      change.notify(rosterNotification(snap.roster), now);
      return ok(true);
    });
    return r.ok && r.value;
  }

  roster(scope: CallScope): Promise<Tagged<ParticipantRecord[]>> {
    return this.read(scope, (snap) => ok(snap.roster));
  }

  participant(scope: CallScope, participantId: string): Promise<Tagged<ParticipantRecord>> {
    return this.read(scope, (snap) => {
      const p = snap.roster.find((q) => q.id === participantId);
      return p ? ok(p) : refuse('participantNotFound');
    });
  }

  join(scope: CallScope, people: NewParticipant[]): Promise<Tagged<ParticipantRecord[]>> {
    return this.mutate(scope, (snap, change) => {
      this.insertPeople(snap, change, people);
      change.notify(rosterNotification(snap.roster), scope.now);
      return ok(snap.roster);
    });
  }

  updateParticipant(scope: CallScope, participantId: string | 'bot', patch: ParticipantPatch): Promise<Tagged<ParticipantRecord>> {
    return this.mutate(scope, (snap, change) => this.patchParticipant(snap, change, participantId, patch, scope.now));
  }

  leave(scope: CallScope, participantId: string): Promise<Tagged<ParticipantRecord>> {
    return this.mutate(scope, (snap, change) => {
      const who = snap.roster.find((p) => p.id === participantId);
      if (!who) return refuse('participantNotFound');
      if (who.isBot) return refuse('isBot');
      snap.roster = snap.roster.filter((p) => p.id !== participantId);
      change.saveRoster();
      change.notify(rosterNotification(snap.roster), scope.now);
      return ok(who);
    });
  }

  startOperation(scope: CallScope, op: OperationRecord, start: OperationStart): Promise<Tagged<OperationRecord>> {
    return this.mutate(scope, (snap, change) => {
      const stored = start.queued ? queuedAfter(op, this.runningMedia(snap), scope.now) : op;
      change.saveOp(stored);
      if (start.toneSubscribed !== undefined) {
        snap.media.toneSubscribed = start.toneSubscribed;
        change.saveMedia();
      }
      if (start.callState) {
        change.state = start.callState;
        change.notify(callUpdateNotification(scope.callId, start.callState), scope.now);
      }
      if (start.notifyCompletion) change.notify(operationNotification(stored), scope.now);
      if (start.botPatch) this.patchParticipant(snap, change, 'bot', start.botPatch, scope.now);
      return ok(stored);
    });
  }

  operation(scope: CallScope, operationId: string): Promise<Tagged<OperationRecord>> {
    return this.read(scope, (snap) => {
      const op = snap.ops.find((o) => o.id === operationId);
      return op ? ok(op) : refuse('operationNotFound');
    });
  }

  operations(scope: CallScope): Promise<Tagged<OperationRecord[]>> {
    return this.read(scope, (snap) => ok(snap.ops));
  }

  async runDue(now: number, limit: number): Promise<{ op: OperationRecord; ran: OperationEffects }[]> {
    if (limit <= 0) return [];
    // The earliest `limit` due steps over every shard, grouped by call (one commit per call).
    const perShard = await this.r.command((c) =>
      Promise.all(
        Array.from(
          { length: this.r.shards },
          (_, s) => c.zrangebyscore(`${this.r.prefix(s)}:botdue`, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit) as Promise<string[]>,
        ),
      ),
    );
    const due: { member: string; at: number }[] = [];
    for (const flat of perShard)
      for (let i = 0; i + 1 < flat.length; i += 2) due.push({ member: flat[i] as string, at: Number(flat[i + 1]) });
    due.sort((a, b) => a.at - b.at);
    const byCall = new Map<string, Set<string>>();
    for (const { member } of due.slice(0, limit)) {
      const cut = member.lastIndexOf('|');
      const callId = member.slice(0, cut);
      const ids = byCall.get(callId) ?? new Set<string>();
      ids.add(member.slice(cut + 1));
      byCall.set(callId, ids);
    }
    const out: { op: OperationRecord; ran: OperationEffects; at: number }[] = [];
    for (const [callId, ids] of byCall) out.push(...(await this.inLine(callId, () => this.runCallDue(callId, ids, now))));
    // Earliest first, each at its own moment (a stable sort keeps a call's own order).
    return out.sort((a, b) => a.at - b.at).map(({ op, ran }) => ({ op, ran }));
  }

  /** Runs one call's due steps named by the due set, in one commit; none if another caller ran them first. */
  private async runCallDue(
    callId: string,
    ids: Set<string>,
    now: number,
  ): Promise<{ op: OperationRecord; ran: OperationEffects; at: number }[]> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const snap = await this.load(callId);
      const change = new Change(snap);
      const out: { op: OperationRecord; ran: OperationEffects; at: number }[] = [];
      const steps = snap.ops
        .filter((o) => ids.has(o.id) && o.status === 'running' && o.dueAt !== null && o.dueAt <= now)
        .sort((a, b) => (a.dueAt ?? 0) - (b.dueAt ?? 0));
      // What the set names but is not due (any more): another caller ran it, or the call is gone.
      for (const id of ids) {
        const op = snap.ops.find((o) => o.id === id);
        if (!op || op.dueAt === null) change.due.set(dueMember(callId, id), null);
      }
      for (const op of steps) {
        // A step is stamped at its own moment, however late the sweep runs.
        const at = op.dueAt ?? now;
        const call = snap.call;
        if (!call || call.deadline === '' || Number(call.deadline) <= at) {
          if (call) change.saveOp({ ...op, dueAt: null });
          else change.due.set(dueMember(callId, op.id), null);
          continue;
        }
        const ran = op.effects;
        if (ran.join?.length) {
          this.insertPeople(snap, change, ran.join);
          change.notify(rosterNotification(snap.roster), at);
        }
        if (ran.callState) {
          change.state = ran.callState;
          change.notify(callUpdateNotification(callId, ran.callState), at);
        }
        let after: OperationRecord;
        if (ran.next) {
          after = { ...op, dueAt: at + ran.next.afterMs, effects: ran.next.effects };
          change.saveOp(after);
        } else {
          after = { ...op, status: 'completed', resultInfo: op.result, dueAt: null, completedAt: at };
          change.saveOp(after);
          // transfer has no operation id on Graph's side: its outcome is the call's own notifications.
          if (op.kind !== 'transfer') change.notify(operationNotification(after), at);
        }
        out.push({ op: after, ran, at });
      }
      if (change.empty) return [];
      // Unchanged since the read: the call's state and deadline decided which steps ran.
      const r = await this.commit(
        callId,
        snap,
        { owner: null, liveAt: null, state: snap.call !== undefined, deadline: snap.call !== undefined },
        change,
      );
      if (r === 1) return out;
      if (r === 0) return [];
    }
    throw new StoreUnavailableError(`running due operations of call ${callId} lost ${MAX_ATTEMPTS} races in a row`);
  }

  async nextDueAt(): Promise<number | undefined> {
    const firsts = await this.r.command((c) =>
      Promise.all(
        Array.from({ length: this.r.shards }, (_, s) => c.zrange(`${this.r.prefix(s)}:botdue`, 0, 0, 'WITHSCORES') as Promise<string[]>),
      ),
    );
    const scores = firsts.filter((f) => f.length === 2).map((f) => Number(f[1]));
    return scores.length ? Math.min(...scores) : undefined;
  }

  cancelMedia(scope: CallScope): Promise<Tagged<OperationRecord[]>> {
    return this.mutate(scope, (snap, change) =>
      ok(this.runningMedia(snap).map((op) => this.finish(change, op, 'failed', OPERATION_RESULTS.canceled, scope.now))),
    );
  }

  tones(scope: CallScope, tones: string[]): Promise<Tagged<TonesOutcome>> {
    return this.mutate(scope, (snap, change) => {
      const state = snap.call?.state as CallState;
      const outcome: TonesOutcome = { notified: 0, stopped: [] };
      for (const tone of tones) {
        if (snap.media.toneSubscribed) {
          const sequenceId = ++snap.media.toneSequence;
          change.saveMedia();
          change.notify(
            callUpdateNotification(scope.callId, state, { toneInfo: { '@odata.type': '#microsoft.graph.toneInfo', sequenceId, tone } }),
            scope.now,
          );
          outcome.notified++;
        }
        for (const op of this.runningMedia(snap)) {
          const stopped = stoppedByTone(op, tone, scope.now);
          if (stopped) outcome.stopped.push(this.finish(change, stopped, 'completed', OPERATION_RESULTS.stopTone, scope.now));
        }
      }
      return ok(outcome);
    });
  }

  silence(scope: CallScope): Promise<Tagged<OperationRecord[]>> {
    return this.mutate(scope, (snap, change) => {
      const changed: OperationRecord[] = [];
      for (const op of this.runningMedia(snap)) {
        const next = silencedRecording(op, scope.now);
        if (!next) continue;
        change.saveOp(next);
        changed.push(next);
      }
      return ok(changed);
    });
  }
}
