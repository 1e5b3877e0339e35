import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { MEDIA_ROLE } from '../auth/permissions.js';
import type { Clock } from '../clock/clock.js';
import { type GraphError, graphErrors } from '../errors/graph-errors.js';
import type { BotActionRefusal, BotActionStore, CallScope, OperationStart, Tagged } from '../store/bot-action-store.js';
import type { CallStore } from '../store/call-store.js';
import type { ChangeType, RequestCause } from './call-events.js';
import type { CallOwner, CallRecord, CallSummary, ResultInfo } from './call-types.js';
import {
  DTMF_TONE_MS,
  OPERATION_RESULTS,
  type OperationEffects,
  type OperationKind,
  type OperationRecord,
  type RecordingPlan,
  validateContextOnly,
  validatePlayPrompt,
  validateRecordResponse,
  validateScreenSharingRole,
  validateSendDtmfTones,
  validateTransfer,
  validateUpdateRecordingStatus,
} from './operations.js';
import { initialRoster, invitees, type ParticipantPatch, type ParticipantRecord, validateInvite, validateJoin } from './participants.js';

export interface BotActionConfig {
  /** How long (virtual) one prompt plays. */
  promptMs: number;
  /** The beep before a recording listens (recordResponse playBeep). */
  beepMs: number;
  /** How long an invitee takes to accept and join. */
  inviteAcceptMs: number;
  /** transferring -> transferAccepted -> terminated: each step takes this long. */
  transferStepMs: number;
}

export const DEFAULT_BOT_ACTIONS: BotActionConfig = { promptMs: 3_000, beepMs: 500, inviteAcceptMs: 2_000, transferStepMs: 1_000 };

/** The bot making a Graph request: its call scope and the roles of its token. */
export interface Actor {
  owner: CallOwner;
  roles: readonly string[];
  /** The request it makes, for the log. */
  cause?: RequestCause | undefined;
}

/** An operation started (by a request) or stepped on its own (completed, or a transfer's next state). */
export type OperationListener = (op: OperationRecord, how: 'started' | 'stepped', cause?: RequestCause) => void;

const BATCH = 500;

/**
 * What a bot does inside a call (participants, operations, tones, recording, transfer) and what
 * the control API does as the other people. Completes operations in virtual time: it is the due
 * work of its own DueScheduler.
 */
export class BotActionService {
  private readonly listeners: ((at?: number) => void)[] = [];
  private readonly operationListeners: OperationListener[] = [];

  constructor(
    private readonly store: BotActionStore,
    private readonly calls: CallStore,
    private readonly clock: Clock,
    readonly config: BotActionConfig = DEFAULT_BOT_ACTIONS,
    /** Ends a call an operation ends (a transfer), so that the call's observers are told (CallService.endByOperation). */
    private readonly endCall: (callId: string, at: number, result: ResultInfo) => Promise<unknown> = (id, at, result) =>
      calls.end(id, null, at, result),
  ) {}

  /** Told after every change that queued notifications or scheduled work (`at`: when it is due). */
  onChange(listener: (at?: number) => void): void {
    this.listeners.push(listener);
  }

  /** Told of every operation started and of every step an operation takes on its own. */
  onOperation(listener: OperationListener): void {
    this.operationListeners.push(listener);
  }

  /** A call changed state: once its media flows (established), its roster is seeded and notified. */
  onCallChanged(summary: CallRecord | CallSummary, _change: ChangeType): void {
    // An established call always comes whole (only the expiry sweep leaves the resource out).
    if (summary.state !== 'established' || !summary.resource) return;
    const call: CallRecord = { ...summary, resource: summary.resource };
    void this.store
      .seedRoster(call, initialRoster(call, this.clock.now()), this.clock.now())
      .then((added) => {
        if (added) this.changed();
      })
      .catch(() => {
        // Seeded again, lazily, by the next roster read or action.
      });
  }

  // ---- participants (Graph) ----

  async listParticipants(owner: CallOwner, callId: string): Promise<ParticipantRecord[]> {
    const scope = await this.scope(callId, owner);
    return this.must(await this.store.roster(scope));
  }

  async getParticipant(owner: CallOwner, callId: string, participantId: string): Promise<ParticipantRecord> {
    const scope = await this.scope(callId, owner);
    return this.must(await this.store.participant(scope, participantId));
  }

  /** DELETE .../participants/{id}: the bot removes someone from the call. */
  async removeParticipant(owner: CallOwner, callId: string, participantId: string): Promise<void> {
    const scope = await this.scope(callId, owner);
    this.must(await this.store.leave(scope, participantId));
    this.changed();
  }

  /** POST .../participants/{id}/mute: the bot mutes someone (a server mute). */
  async muteParticipant(actor: Actor, callId: string, participantId: string, input: unknown): Promise<OperationRecord> {
    const { clientContext } = validateContextOnly(input, 'mute');
    const scope = await this.scope(callId, actor.owner);
    this.must(await this.store.updateParticipant(scope, participantId, { isMuted: true, serverMuted: true }));
    return this.start(scope, this.completedOp(scope, 'muteParticipant', clientContext), { notifyCompletion: false }, actor);
  }

  async invite(actor: Actor, callId: string, input: unknown): Promise<OperationRecord> {
    const { participants, clientContext } = validateInvite(input);
    requireRole(actor, 'Calls.InitiateGroupCall.All');
    const { scope } = await this.established(callId, actor.owner);
    const op = this.runningOp(scope, 'invite', clientContext, this.config.inviteAcceptMs, OPERATION_RESULTS.completed, {
      join: invitees(callId, participants, scope.now),
    });
    op.data.participants = participants.map((p) => ({ '@odata.type': '#microsoft.graph.invitationParticipantInfo', ...p }));
    return this.start(scope, op, {}, actor);
  }

  // ---- the call's own operations (Graph) ----

  async playPrompt(actor: Actor, callId: string, input: unknown): Promise<OperationRecord> {
    const { prompts, clientContext } = validatePlayPrompt(input);
    const { scope } = await this.media(callId, actor.owner, 'playPrompt');
    const op = this.runningOp(scope, 'playPrompt', clientContext, prompts.length * this.config.promptMs, OPERATION_RESULTS.completed);
    op.data.prompts = prompts;
    return this.start(scope, op, { queued: true }, actor);
  }

  async recordResponse(actor: Actor, callId: string, input: unknown, recordingBase: string): Promise<OperationRecord> {
    const req = validateRecordResponse(input);
    requireRole(actor, MEDIA_ROLE);
    const { scope } = await this.media(callId, actor.owner, 'recordResponse');
    const lead = req.prompts.length * this.config.promptMs + (req.playBeep ? this.config.beepMs : 0);
    const maxMs = req.maxRecordDurationSeconds * 1000;
    const op = this.runningOp(scope, 'recordResponse', req.clientContext, lead + maxMs, OPERATION_RESULTS.maxRecordDuration);
    const recording: RecordingPlan = {
      startAt: scope.now + lead,
      maxSilenceMs: req.maxSilenceTimeoutSeconds * 1000,
      stopTones: req.stopTones,
      location: `${recordingBase}/${callId}/${op.id}`,
      accessToken: randomBytes(32).toString('base64url'),
      completionReason: 'maxRecordDurationReached',
    };
    op.data = { prompts: req.prompts, recording };
    // bargeInAllowed: it starts now, ending what is playing, instead of waiting its turn.
    if (req.bargeInAllowed) {
      const canceled = this.must(await this.store.cancelMedia(scope));
      if (canceled.length) this.changed();
    }
    return this.start(scope, op, { queued: !req.bargeInAllowed }, actor);
  }

  async subscribeToTone(actor: Actor, callId: string, input: unknown): Promise<OperationRecord> {
    const { clientContext } = validateContextOnly(input, 'subscribeToTone');
    requireRole(actor, MEDIA_ROLE);
    const { scope } = await this.media(callId, actor.owner, 'subscribeToTone');
    return this.start(scope, this.completedOp(scope, 'subscribeToTone', clientContext), { toneSubscribed: true }, actor);
  }

  /** sendDtmfTones: the bot presses keys; it completes once every tone has sounded. */
  async sendDtmfTones(actor: Actor, callId: string, input: unknown): Promise<OperationRecord> {
    const { tones, delayBetweenTonesMs, clientContext } = validateSendDtmfTones(input);
    const { scope } = await this.established(callId, actor.owner);
    const duration = tones.length * DTMF_TONE_MS + (tones.length - 1) * delayBetweenTonesMs;
    const op = this.runningOp(scope, 'sendDtmfTones', clientContext, duration, OPERATION_RESULTS.completed);
    op.data = { tones, delayBetweenTonesMs };
    return this.start(scope, op, {}, actor);
  }

  /** mute / unmute: the bot mutes itself (a server mute of its own audio). */
  async muteSelf(actor: Actor, callId: string, input: unknown, muted: boolean): Promise<OperationRecord> {
    const { clientContext } = validateContextOnly(input, muted ? 'mute' : 'unmute');
    const { scope } = await this.established(callId, actor.owner);
    const op = this.completedOp(scope, muted ? 'mute' : 'unmute', clientContext);
    return this.start(scope, op, { botPatch: { isMuted: muted, serverMuted: muted }, notifyCompletion: true }, actor);
  }

  async updateRecordingStatus(actor: Actor, callId: string, input: unknown): Promise<OperationRecord> {
    const { status, clientContext } = validateUpdateRecordingStatus(input);
    const { scope } = await this.established(callId, actor.owner);
    const op = this.completedOp(scope, 'updateRecordingStatus', clientContext);
    op.data.status = status;
    return this.start(scope, op, { botPatch: { recordingStatus: status }, notifyCompletion: true }, actor);
  }

  async cancelMediaProcessing(actor: Actor, callId: string, input: unknown): Promise<OperationRecord> {
    const { clientContext } = validateContextOnly(input, 'cancelMediaProcessing');
    const { scope } = await this.media(callId, actor.owner, 'cancelMediaProcessing');
    this.must(await this.store.cancelMedia(scope));
    return this.start(scope, this.completedOp(scope, 'cancelMediaProcessing', clientContext), { notifyCompletion: true }, actor);
  }

  /** changeScreenSharingRole: 204, no operation; the bot's participant shows (or stops) a screen-sharing stream. */
  async changeScreenSharingRole(actor: Actor, callId: string, input: unknown): Promise<void> {
    const role = validateScreenSharingRole(input);
    const { scope } = await this.established(callId, actor.owner);
    this.must(await this.store.updateParticipant(scope, 'bot', { sharingScreen: role === 'sharer' }));
    this.changed();
  }

  /** transfer: 202; the call goes transferring -> transferAccepted -> terminated (0/7015), call-transfer.md. */
  async transfer(actor: Actor, callId: string, input: unknown): Promise<void> {
    const { transferTarget, clientContext } = validateTransfer(input);
    const { scope } = await this.established(callId, actor.owner);
    const step = this.config.transferStepMs;
    const op = this.runningOp(scope, 'transfer', clientContext, step, OPERATION_RESULTS.transferred, {
      callState: 'transferAccepted',
      next: { afterMs: step, effects: { endCall: OPERATION_RESULTS.transferred } },
    });
    op.data.transferTarget = transferTarget;
    await this.start(scope, op, { callState: 'transferring' }, actor);
  }

  async getOperation(owner: CallOwner, callId: string, operationId: string): Promise<OperationRecord> {
    const scope = await this.scope(callId, owner);
    const op = this.must(await this.store.operation(scope, operationId));
    if (op.kind === 'transfer') throw graphErrors.operationNotFound();
    return op;
  }

  async listOperations(owner: CallOwner, callId: string): Promise<OperationRecord[]> {
    const scope = await this.scope(callId, owner);
    return this.must(await this.store.operations(scope)).filter((op) => op.kind !== 'transfer');
  }

  /** The recording of a completed recordResponse, if `token` is its recordingAccessToken. */
  async recording(callId: string, operationId: string, token: string | undefined): Promise<{ durationMs: number }> {
    const op = await this.store.operation({ callId, owner: null, now: this.clock.now() }, operationId);
    const rec = op.ok ? (op.value.data.recording as RecordingPlan | undefined) : undefined;
    if (!op.ok || !rec || op.value.status !== 'completed') throw graphErrors.recordingNotFound();
    const given = Buffer.from(token ?? '');
    const expected = Buffer.from(rec.accessToken);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw graphErrors.recordingTokenInvalid();
    return { durationMs: Math.max(0, (op.value.completedAt ?? rec.startAt) - rec.startAt) };
  }

  // ---- the control API: the other people ----

  async join(callId: string, input: unknown): Promise<ParticipantRecord> {
    const scope = await this.scope(callId, null);
    const person = validateJoin(input, callId, scope.now);
    this.must(await this.store.join(scope, [person]));
    this.changed();
    return this.must(await this.store.participant(scope, person.id));
  }

  async leave(callId: string, participantId: string): Promise<ParticipantRecord> {
    const scope = await this.scope(callId, null);
    const who = this.must(await this.store.leave(scope, participantId));
    this.changed();
    return who;
  }

  /** A person mutes or unmutes themselves, starts or stops sharing their screen. */
  async updatePerson(callId: string, participantId: string, patch: ParticipantPatch): Promise<ParticipantRecord> {
    const scope = await this.scope(callId, null);
    const p = this.must(await this.store.updateParticipant(scope, participantId, patch));
    this.changed();
    return p;
  }

  async sendTones(callId: string, tones: string[]): Promise<{ notified: number; stoppedRecordings: number }> {
    const scope = await this.scope(callId, null);
    const out = this.must(await this.store.tones(scope, tones));
    this.changed();
    return { notified: out.notified, stoppedRecordings: out.stopped.length };
  }

  async silence(callId: string): Promise<{ endingRecordings: number }> {
    const scope = await this.scope(callId, null);
    const changed = this.must(await this.store.silence(scope));
    for (const op of changed) if (op.dueAt !== null) this.changed(op.dueAt);
    return { endingRecordings: changed.length };
  }

  async roster(callId: string): Promise<ParticipantRecord[]> {
    const scope = await this.scope(callId, null);
    return this.must(await this.store.roster(scope));
  }

  // ---- due work (its DueScheduler) ----

  async processDue(): Promise<number> {
    const now = this.clock.now();
    let n = 0;
    for (;;) {
      const batch = await this.store.runDue(now, BATCH);
      for (const { op, ran } of batch) {
        if (ran.endCall) await this.endCall(op.callId, op.completedAt ?? now, ran.endCall);
        for (const l of this.operationListeners) l(op, 'stepped');
      }
      n += batch.length;
      if (batch.length) this.changed();
      // A step may schedule the next one already due (a late sweep): run until nothing is.
      if (batch.length === 0 || n > 100 * BATCH) break;
    }
    return n;
  }

  nextDueAt(): Promise<number | undefined> {
    return this.store.nextDueAt();
  }

  // ---- helpers ----

  private changed(at?: number): void {
    for (const l of this.listeners) l(at);
  }

  private async start(scope: CallScope, op: OperationRecord, start: OperationStart, actor: Actor): Promise<OperationRecord> {
    const stored = this.must(await this.store.startOperation(scope, op, start));
    this.changed(stored.dueAt ?? undefined);
    for (const l of this.operationListeners) l(stored, 'started', actor.cause);
    return stored;
  }

  private runningOp(
    scope: CallScope,
    kind: OperationKind,
    clientContext: string | null,
    durationMs: number,
    result: OperationRecord['result'],
    effects: OperationEffects = {},
  ): OperationRecord {
    return {
      id: randomUUID(),
      callId: scope.callId,
      kind,
      status: 'running',
      clientContext,
      resultInfo: null,
      createdAt: scope.now,
      dueAt: scope.now + durationMs,
      completedAt: null,
      result,
      effects,
      data: {},
    };
  }

  private completedOp(scope: CallScope, kind: OperationKind, clientContext: string | null): OperationRecord {
    return {
      id: randomUUID(),
      callId: scope.callId,
      kind,
      status: 'completed',
      clientContext,
      resultInfo: OPERATION_RESULTS.completed,
      createdAt: scope.now,
      dueAt: null,
      completedAt: scope.now,
      result: OPERATION_RESULTS.completed,
      effects: {},
      data: {},
    };
  }

  /** The scope of a live call (404 8522 otherwise), its roster seeded if its media flows. */
  private async scope(callId: string, owner: CallOwner | null): Promise<CallScope> {
    const now = this.clock.now();
    const call = owner ? await this.calls.findLive(callId, owner, now) : await this.liveForControl(callId, now);
    if (!call) throw graphErrors.callNotFound();
    if (call.state === 'established' || call.state === 'transferring' || call.state === 'transferAccepted') {
      if (await this.store.seedRoster(call, initialRoster(call, now), now)) this.changed();
    }
    return { callId, owner, now };
  }

  private async liveForControl(callId: string, now: number): Promise<CallRecord | undefined> {
    const call = await this.calls.get(callId);
    return call && call.deadline !== null && call.deadline > now ? call : undefined;
  }

  /** An operation needs the call established (media flowing). */
  private async established(callId: string, owner: CallOwner): Promise<{ scope: CallScope; call: CallRecord }> {
    const now = this.clock.now();
    const call = await this.calls.findLive(callId, owner, now);
    if (!call) throw graphErrors.callNotFound();
    if (call.state !== 'established') throw graphErrors.callNotEstablished({ state: call.state });
    return { scope: await this.scope(callId, owner), call };
  }

  /** A media operation also needs service-hosted media (call-playprompt.md and its siblings). */
  private async media(callId: string, owner: CallOwner, action: string): Promise<{ scope: CallScope; call: CallRecord }> {
    const got = await this.established(callId, owner);
    const type = (got.call.resource.mediaConfig as { '@odata.type'?: unknown } | undefined)?.['@odata.type'];
    if (typeof type === 'string' && type.replace(/^#/, '') === 'microsoft.graph.appHostedMediaConfig')
      throw graphErrors.appHostedMedia({ action });
    return got;
  }

  private must<T>(result: Tagged<T>): T {
    if (result.ok) return result.value;
    throw refusalError(result.reason);
  }
}

function refusalError(reason: BotActionRefusal): GraphError {
  switch (reason) {
    case 'callNotFound':
      return graphErrors.callNotFound();
    case 'participantNotFound':
      return graphErrors.participantNotFound();
    case 'operationNotFound':
      return graphErrors.operationNotFound();
    case 'isBot':
      return graphErrors.participantIsBot();
  }
}

function requireRole(actor: Actor, role: string): void {
  if (!actor.roles.includes(role)) throw graphErrors.missingRole();
}
