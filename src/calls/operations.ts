import { graphErrors } from '../errors/graph-errors.js';
import type { CallNotification } from './call-notifications.js';
import type { CallState, ResultInfo } from './call-types.js';
import { type NewParticipant, RECORDING_STATUSES, type RecordingStatus, validateClientContext } from './participants.js';

/** The commsOperations a bot can start (the methods of https://learn.microsoft.com/graph/api/resources/call); transfer runs as one too, though Graph gives it no id. */
export type OperationKind =
  | 'playPrompt'
  | 'recordResponse'
  | 'subscribeToTone'
  | 'mute'
  | 'unmute'
  | 'muteParticipant'
  | 'updateRecordingStatus'
  | 'cancelMediaProcessing'
  | 'invite'
  | 'sendDtmfTones'
  | 'transfer';

export type OperationStatus = 'notStarted' | 'running' | 'completed' | 'failed';

/** What happens when a running operation's moment comes; a `next` makes it a multi-step one (transfer). */
export interface OperationEffects {
  /** People who join the call then (an accepted invitation). */
  join?: NewParticipant[];
  /** The call moves to this state (transfer: transferAccepted), notified as a call update. */
  callState?: CallState;
  /** The call ends with this result (a transfer completed). */
  endCall?: ResultInfo;
  /** Another step after this one, `afterMs` later; the operation completes only after the last. */
  next?: { afterMs: number; effects: OperationEffects };
}

export interface OperationRecord {
  id: string;
  callId: string;
  kind: OperationKind;
  status: OperationStatus;
  clientContext: string | null;
  /** Set when it completes or fails. */
  resultInfo: ResultInfo | null;
  createdAt: number;
  /** When it next has work (completion or its next step); null once done. */
  dueAt: number | null;
  completedAt: number | null;
  /** The result it completes with unless something ends it first (cancel, a stop tone, silence). */
  result: ResultInfo;
  effects: OperationEffects;
  /** Kind-specific facts: prompts, invitees, the recording. */
  data: Record<string, unknown>;
}

/** What a recordResponse records, decided when it starts. */
export interface RecordingPlan {
  /** When the caller is heard from (after any prompt and beep). */
  startAt: number;
  maxSilenceMs: number;
  stopTones: string[];
  location: string;
  accessToken: string;
  completionReason: string;
}

/**
 * A media operation queued behind the media already running: it starts when the last of them is due
 * (its recording window moves with it), as Graph plays prompts one after another (call-playprompt.md).
 */
export function queuedAfter(op: OperationRecord, running: readonly OperationRecord[], now: number): OperationRecord {
  if (op.dueAt === null) return op;
  const busyUntil = running.map((o) => o.dueAt ?? now).reduce((a, b) => Math.max(a, b), now);
  const shift = busyUntil - now;
  if (shift <= 0) return op;
  const rec = op.data.recording as RecordingPlan | undefined;
  return {
    ...op,
    dueAt: op.dueAt + shift,
    data: rec ? { ...op.data, recording: { ...rec, startAt: rec.startAt + shift } } : op.data,
  };
}

/**
 * The recording `tone` stops, completed with Graph's stop-tone result, or null when this operation is
 * not a recording listening for that tone at `now` (call-record.md: stopTones).
 */
export function stoppedByTone(op: OperationRecord, tone: string, now: number): OperationRecord | null {
  const rec = op.data.recording as RecordingPlan | undefined;
  if (op.kind !== 'recordResponse' || !rec || rec.startAt > now || !rec.stopTones.includes(tone)) return null;
  return { ...op, data: { ...op.data, recording: { ...rec, completionReason: 'stopToneDetected' } } };
}

/**
 * A recording whose caller falls silent at `now`: it now ends maxSilenceMs after that (or after the
 * recording starts), with the max-silence result; null when it would end sooner anyway or is no
 * running recording (call-record.md: maxSilenceTimeoutInSeconds).
 */
export function silencedRecording(op: OperationRecord, now: number): OperationRecord | null {
  const rec = op.data.recording as RecordingPlan | undefined;
  if (op.kind !== 'recordResponse' || !rec || op.dueAt === null) return null;
  const end = Math.max(now, rec.startAt) + rec.maxSilenceMs;
  if (end >= op.dueAt) return null;
  return {
    ...op,
    dueAt: end,
    result: OPERATION_RESULTS.maxSilence,
    data: { ...op.data, recording: { ...rec, completionReason: 'maxSilenceTimeout' } },
  };
}

/** Graph's documented operation results (call-playprompt.md, call-record.md, call-cancelmediaprocessing.md). */
export const OPERATION_RESULTS = {
  completed: { code: 200, subcode: 0, message: 'Action completed successfully.' },
  maxRecordDuration: { code: 200, subcode: 8515, message: 'Action completed, max record duration reached.' },
  stopTone: { code: 200, subcode: 8514, message: 'Action completed, stop tone detected.' },
  maxSilence: { code: 200, subcode: 8511, message: 'Action completed, max silence timeout reached.' },
  canceled: { code: 400, subcode: 8508, message: 'Action failed, the operation was cancelled.' },
  transferred: { code: 0, subcode: 7015, message: 'GracefulTransferCompleted' },
} as const satisfies Record<string, ResultInfo>;

/** Operations that run on the media queue: one after another, ended by cancelMediaProcessing. */
export const MEDIA_KINDS: readonly OperationKind[] = ['playPrompt', 'recordResponse'];

const ODATA_TYPES: Record<OperationKind, string> = {
  playPrompt: '#microsoft.graph.playPromptOperation',
  recordResponse: '#microsoft.graph.recordOperation',
  subscribeToTone: '#microsoft.graph.subscribeToToneOperation',
  mute: '#microsoft.graph.muteParticipantOperation',
  unmute: '#microsoft.graph.unmuteParticipantOperation',
  muteParticipant: '#microsoft.graph.muteParticipantOperation',
  updateRecordingStatus: '#microsoft.graph.updateRecordingStatusOperation',
  cancelMediaProcessing: '#microsoft.graph.cancelMediaProcessingOperation',
  invite: '#microsoft.graph.inviteParticipantsOperation',
  sendDtmfTones: '#microsoft.graph.sendDtmfTonesOperation',
  transfer: '#microsoft.graph.commsOperation',
};

/**
 * Graph's metadata (and so its OpenAPI description and the Kiota SDKs) spell operationStatus
 * NotStarted/Running/Completed/Failed; the documented notifications spell it in lower case,
 * which is what bots compare against. Responses follow the metadata, notifications the docs
 * (docs/decisions.md).
 */
const RESPONSE_STATUS: Record<OperationStatus, string> = {
  notStarted: 'NotStarted',
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
};

/** An operation as Graph shows it: in a response (`response`) or a completion notification. */
export function toGraphOperation(op: OperationRecord, form: 'response' | 'notification'): Record<string, unknown> {
  const out: Record<string, unknown> = {
    '@odata.type': ODATA_TYPES[op.kind],
    id: op.id,
    status: form === 'response' ? RESPONSE_STATUS[op.status] : op.status,
    clientContext: op.clientContext,
  };
  if (op.resultInfo) out.resultInfo = { '@odata.type': '#microsoft.graph.resultInfo', ...op.resultInfo };
  if (op.kind === 'recordResponse') {
    const rec = op.data.recording as RecordingPlan | undefined;
    const done = op.status === 'completed' && rec;
    out.recordingLocation = done ? rec.location : null;
    out.recordingAccessToken = done ? rec.accessToken : null;
    if (done) out.completionReason = rec.completionReason;
  }
  if (op.kind === 'playPrompt' && op.status !== 'running')
    out.completionReason = op.status === 'completed' ? 'completedSuccessfully' : 'mediaOperationCanceled';
  if (op.kind === 'invite') out.participants = op.data.participants ?? [];
  if (op.kind === 'sendDtmfTones' && op.status === 'completed') out.completionReason = 'completedSuccessfully';
  return out;
}

/** The completion (or failure) of an operation: `deleted` on `.../operations/{id}` (call-playprompt.md). */
export function operationNotification(op: OperationRecord): CallNotification {
  return {
    changeType: 'deleted',
    resourcePath: `/operations/${op.id}`,
    resourceData: { ...toGraphOperation(op, 'notification'), '@odata.id': `/communications/calls/${op.callId}/operations/${op.id}` },
  };
}

/** A call's own state changing because of an operation (transfer, tones). */
export function callUpdateNotification(callId: string, state: CallState, extra: Record<string, unknown> = {}): CallNotification {
  return {
    changeType: 'updated',
    resourceData: { '@odata.type': '#microsoft.graph.call', '@odata.id': `/communications/calls/${callId}`, id: callId, state, ...extra },
  };
}

// ---- request bodies, validated as Graph documents them ----

const bad = (detail: string) => graphErrors.invalidRequest({ detail });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function body(input: unknown, action: string, allowed: readonly string[]): Record<string, unknown> {
  if (input === undefined || input === null) {
    if (allowed.length <= 1) return {};
    throw bad(`The request body of ${action} is required.`);
  }
  if (!isObject(input)) throw graphErrors.invalidJson();
  for (const k of Object.keys(input))
    if (k !== '@odata.type' && !allowed.includes(k)) throw bad(`The property '${k}' does not exist on type 'microsoft.graph.${action}'.`);
  return input;
}

function validatePrompts(v: unknown, max: number, required: boolean): Record<string, unknown>[] {
  if (v === undefined || v === null) {
    if (required) throw bad("Property 'prompts' is required: at least one mediaPrompt.");
    return [];
  }
  if (!Array.isArray(v)) throw bad("Property 'prompts' must be a collection of mediaPrompt.");
  if (required && v.length === 0) throw bad("Property 'prompts' must hold at least one mediaPrompt.");
  if (v.length > max) throw bad(`Property 'prompts' can hold at most ${max} mediaPrompt.`);
  return v.map((p, i) => {
    if (!isObject(p)) throw bad(`Property 'prompts[${i}]' must be a mediaPrompt.`);
    const type = p['@odata.type'];
    if (type !== undefined && String(type).replace(/^#/, '') !== 'microsoft.graph.mediaPrompt')
      throw bad(`Property 'prompts[${i}]' must be a #microsoft.graph.mediaPrompt; only media prompts are supported.`);
    const info = p.mediaInfo;
    if (!isObject(info) || typeof info.uri !== 'string' || info.uri.length === 0)
      throw bad(`Property 'prompts[${i}].mediaInfo.uri' is required: the audio file to play.`);
    let url: URL;
    try {
      url = new URL(info.uri);
    } catch {
      throw bad(`Property 'prompts[${i}].mediaInfo.uri' must be an absolute URL.`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad(`Property 'prompts[${i}].mediaInfo.uri' must be an http(s) URL.`);
    if (info.resourceId !== undefined && info.resourceId !== null && typeof info.resourceId !== 'string')
      throw bad(`Property 'prompts[${i}].mediaInfo.resourceId' must be a string.`);
    return p;
  });
}

export function validatePlayPrompt(input: unknown) {
  const b = body(input, 'playPrompt', ['prompts', 'clientContext']);
  return { prompts: validatePrompts(b.prompts, 20, true), clientContext: validateClientContext(b.clientContext) };
}

/** DTMF keys as bots write them in stopTones ("#", "1", "*"), or Graph's tone names. */
const TONE_KEYS: Record<string, string> = { '*': 'star', '#': 'pound', A: 'a', B: 'b', C: 'c', D: 'd' };
for (let d = 0; d <= 9; d++) TONE_KEYS[String(d)] = `tone${d}`;
export const TONES: readonly string[] = [...Array.from({ length: 10 }, (_, d) => `tone${d}`), 'star', 'pound', 'a', 'b', 'c', 'd', 'flash'];

/** The Graph tone name of a key or tone name; undefined when it is neither. */
export function toneName(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  if (TONES.includes(v)) return v;
  return TONE_KEYS[v] ?? TONE_KEYS[v.toUpperCase()];
}

function seconds(b: Record<string, unknown>, name: string, dflt: number): number {
  const v = b[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 120)
    throw bad(`Property '${name}' must be a whole number of seconds from 1 to 120.`);
  return v;
}

function flag(b: Record<string, unknown>, name: string, dflt: boolean): boolean {
  const v = b[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw bad(`Property '${name}' must be true or false.`);
  return v;
}

export function validateRecordResponse(input: unknown) {
  const b = body(input, 'recordResponse', [
    'prompts',
    'bargeInAllowed',
    'initialSilenceTimeoutInSeconds',
    'maxSilenceTimeoutInSeconds',
    'maxRecordDurationInSeconds',
    'playBeep',
    'stopTones',
    'clientContext',
  ]);
  let stopTones: string[] = [];
  if (b.stopTones !== undefined && b.stopTones !== null) {
    if (!Array.isArray(b.stopTones)) throw bad("Property 'stopTones' must be a collection of tones.");
    stopTones = b.stopTones.map((t, i) => {
      const name = toneName(t);
      if (!name) throw bad(`Property 'stopTones[${i}]' is not a tone: use 0-9, *, #, A-D or a tone name such as tone1.`);
      return name;
    });
  }
  return {
    prompts: validatePrompts(b.prompts, 1, false),
    bargeInAllowed: flag(b, 'bargeInAllowed', false),
    initialSilenceTimeoutSeconds: seconds(b, 'initialSilenceTimeoutInSeconds', 5),
    maxSilenceTimeoutSeconds: seconds(b, 'maxSilenceTimeoutInSeconds', 5),
    maxRecordDurationSeconds: seconds(b, 'maxRecordDurationInSeconds', 5),
    playBeep: flag(b, 'playBeep', true),
    stopTones,
    clientContext: validateClientContext(b.clientContext),
  };
}

/** subscribeToTone, mute, unmute, cancelMediaProcessing, participant mute: only clientContext. */
export function validateContextOnly(input: unknown, action: string): { clientContext: string | null } {
  const b = body(input, action, ['clientContext']);
  return { clientContext: validateClientContext(b.clientContext) };
}

export function validateUpdateRecordingStatus(input: unknown): { status: RecordingStatus; clientContext: string | null } {
  const b = body(input, 'updateRecordingStatus', ['status', 'clientContext']);
  if (b.status === undefined || b.status === null) throw bad("Property 'status' is required: recording or notRecording.");
  if (typeof b.status !== 'string' || !RECORDING_STATUSES.includes(b.status as RecordingStatus))
    throw bad(`Property 'status' must be one of ${RECORDING_STATUSES.join(', ')}.`);
  return { status: b.status as RecordingStatus, clientContext: validateClientContext(b.clientContext) };
}

export function validateScreenSharingRole(input: unknown): 'viewer' | 'sharer' {
  const b = body(input, 'changeScreenSharingRole', ['role']);
  if (b.role !== 'viewer' && b.role !== 'sharer') throw bad("Property 'role' is required: viewer or sharer.");
  return b.role;
}

export function validateTransfer(input: unknown) {
  const b = body(input, 'transfer', ['transferTarget', 'transferee', 'clientContext']);
  const target = b.transferTarget;
  if (!isObject(target)) throw bad("Property 'transferTarget' is required: an invitationParticipantInfo.");
  if (!isObject(target.identity)) throw bad("Property 'transferTarget.identity' is required.");
  const ids = target.identity as Record<string, unknown>;
  if (!['user', 'application', 'phone'].some((k) => isObject(ids[k])))
    throw bad("Property 'transferTarget.identity' must name a user, application or phone.");
  if (b.transferee !== undefined && b.transferee !== null && (!isObject(b.transferee) || !isObject(b.transferee.identity)))
    throw bad("Property 'transferee' must be a participantInfo with an identity.");
  return { transferTarget: target, clientContext: validateClientContext(b.clientContext) };
}

/** How long one DTMF tone sounds when the bot sends tones (sendDtmfTones). */
export const DTMF_TONE_MS = 100;

/** sendDtmfTones: `{tones: tone[1..64], delayBetweenTonesMs?: 0..60000, clientContext?}` (call-senddtmftones.md). */
export function validateSendDtmfTones(input: unknown) {
  const b = body(input, 'sendDtmfTones', ['tones', 'delayBetweenTonesMs', 'clientContext']);
  if (!Array.isArray(b.tones) || b.tones.length === 0)
    throw bad("Property 'tones' is required: a collection of tones such as tone1 or pound.");
  if (b.tones.length > 64) throw bad("Property 'tones' can hold at most 64 tones.");
  const tones = b.tones.map((t, i) => {
    if (typeof t !== 'string' || !TONES.includes(t))
      throw bad(`Property 'tones[${i}]' must be a tone: tone0-tone9, star, pound, a-d or flash.`);
    return t;
  });
  const d = b.delayBetweenTonesMs;
  if (d !== undefined && d !== null && (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > 60_000))
    throw bad("Property 'delayBetweenTonesMs' must be a whole number of milliseconds from 0 to 60000.");
  return { tones, delayBetweenTonesMs: typeof d === 'number' ? d : 0, clientContext: validateClientContext(b.clientContext) };
}

/** POST /_callkeeper/calls/{id}/tones: `{"tones": "12#"}` or `{"tones": ["tone1", "pound"]}`. */
export function validateControlTones(input: unknown): string[] {
  const badControl = (detail: string) => graphErrors.invalidControlRequest({ detail });
  if (!isObject(input)) throw badControl('Send a JSON body such as {"tones": "12#"}.');
  const raw = input.tones;
  const list = typeof raw === 'string' ? [...raw] : Array.isArray(raw) ? raw : undefined;
  if (!list || list.length === 0 || list.length > 64)
    throw badControl("'tones' must be a string of keys (0-9 * # A-D) or a list of 1 to 64 tones.");
  return list.map((t) => {
    const name = toneName(t);
    if (!name) throw badControl(`'${String(t)}' is not a tone: use 0-9, *, #, A-D or a tone name such as tone1.`);
    return name;
  });
}
