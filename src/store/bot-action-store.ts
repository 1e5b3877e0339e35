import type { CallOwner, CallRecord, CallState } from '../calls/call-types.js';
import type { OperationRecord } from '../calls/operations.js';
import type { NewParticipant, ParticipantPatch, ParticipantRecord } from '../calls/participants.js';

/** Why a bot action changed nothing. */
export type BotActionRefusal = 'callNotFound' | 'participantNotFound' | 'operationNotFound' | 'isBot';

/** A conditional write's outcome: the value, or why nothing changed. */
export type Tagged<T> = { ok: true; value: T } | { ok: false; reason: BotActionRefusal };

/**
 * Which call an action is for: it must be live at `now` (as CallStore.findLive) and, unless
 * `owner` is null (the control API acting as the other people), belong to that app and tenant.
 */
export interface CallScope {
  callId: string;
  owner: CallOwner | null;
  now: number;
}

/** What starting an operation does besides storing it. */
export interface OperationStart {
  /**
   * A media operation (playPrompt, recordResponse) waits for the call's running media
   * operations: its dueAt (and its recording's startAt) move later by however long they still run.
   */
  queued?: boolean;
  /** The call moves to this state (transfer: transferring), notified as a call update. */
  callState?: CallState;
  /** Changes the bot's own participant (mute, unmute, recording status, screen sharing), notified as a roster update. */
  botPatch?: ParticipantPatch;
  /** The call starts (true) or stops reporting tones. */
  toneSubscribed?: boolean;
  /** The operation is already done: its completion is notified at once (mute, updateRecordingStatus). */
  notifyCompletion?: boolean;
}

/** What sending tones into a call did. */
export interface TonesOutcome {
  /** How many toneInfo notifications were queued (0 unless the call subscribed to tones). */
  notified: number;
  /** Recordings a stop tone ended. */
  stopped: OperationRecord[];
}

/**
 * Where a call's roster, operations and tone subscription live: the state of what a bot does
 * within a call (issue 11). Like CallStore, every method is one atomic step, durable when its
 * promise resolves, visible to every instance sharing the store; time is always passed in.
 * Notifications a change causes (roster updates, operation completions, toneInfo, call state
 * updates) are queued in the call's outbox line in the same step, behind the call's earlier ones.
 * A call's roster, operations and media state go when the call store purges the call.
 * Contract tests: test/bot-action-store-contract.ts.
 */
export interface BotActionStore {
  /**
   * Adds the people a call starts with (the bot, the other side), once per call: a second seeding
   * changes nothing, even after people left. Queues a roster notification when anyone was
   * added. False (no change) when the call is not live or was seeded already.
   */
  seedRoster(call: CallRecord, people: NewParticipant[], now: number): Promise<boolean>;

  /** The call's roster, in joining order. */
  roster(scope: CallScope): Promise<Tagged<ParticipantRecord[]>>;

  participant(scope: CallScope, participantId: string): Promise<Tagged<ParticipantRecord>>;

  /** People join (ids must be new); queues a roster notification. Returns the new roster. */
  join(scope: CallScope, people: NewParticipant[]): Promise<Tagged<ParticipantRecord[]>>;

  /**
   * Changes a participant (`'bot'` names the bot's own); queues a roster notification when
   * anything changed. Returns the participant as it is now.
   */
  updateParticipant(scope: CallScope, participantId: string | 'bot', patch: ParticipantPatch): Promise<Tagged<ParticipantRecord>>;

  /** Someone leaves (not the bot: `isBot`); queues a roster notification. Returns who left. */
  leave(scope: CallScope, participantId: string): Promise<Tagged<ParticipantRecord>>;

  /** Stores a new operation with what starting it does (see OperationStart). Returns it as stored. */
  startOperation(scope: CallScope, op: OperationRecord, start: OperationStart): Promise<Tagged<OperationRecord>>;

  operation(scope: CallScope, operationId: string): Promise<Tagged<OperationRecord>>;

  /** The call's operations, oldest first. */
  operations(scope: CallScope): Promise<Tagged<OperationRecord[]>>;

  /**
   * Runs up to `limit` operations whose dueAt <= now, earliest first: applies their effects
   * (people join, the call's state moves), then either schedules their next step or completes
   * them with their planned result and queues the completion. Operations of calls that ended
   * meanwhile are dropped. Exclusive: each due step is returned to exactly one caller.
   * Returns the operations as they are after the step (the domain ends calls named by `endCall`).
   */
  runDue(now: number, limit: number): Promise<{ op: OperationRecord; ran: OperationRecord['effects'] }[]>;

  /** The earliest dueAt of a running operation. */
  nextDueAt(): Promise<number | undefined>;

  /**
   * cancelMediaProcessing: every running media operation (playPrompt, recordResponse) of the
   * call fails with the canceled result; each failure is notified. Returns them.
   */
  cancelMedia(scope: CallScope): Promise<Tagged<OperationRecord[]>>;

  /**
   * Someone presses keys: each tone is a toneInfo call notification with the next sequenceId
   * if the call subscribed to tones; a running recording whose stopTones hold a tone (pressed
   * after it began listening) completes now (stopTone).
   */
  tones(scope: CallScope, tones: string[]): Promise<Tagged<TonesOutcome>>;

  /**
   * The caller falls silent: running recordings end maxSilence later (or at once if they had
   * not started listening yet, when their listening starts), with the maxSilence result.
   */
  silence(scope: CallScope): Promise<Tagged<OperationRecord[]>>;
}
