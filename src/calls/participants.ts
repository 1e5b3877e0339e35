import { randomUUID } from 'node:crypto';
import { graphErrors } from '../errors/graph-errors.js';
import type { CallNotification } from './call-notifications.js';
import type { CallRecord } from './call-types.js';

/** Graph's recordingStatus (updateRecordingStatus). */
export type RecordingStatus = 'unknown' | 'notRecording' | 'recording' | 'failed';
export const RECORDING_STATUSES: readonly RecordingStatus[] = ['unknown', 'notRecording', 'recording', 'failed'];

/** One person (or the bot) in a call's roster, as stored. */
export interface ParticipantRecord {
  id: string;
  callId: string;
  /** The participantInfo Graph shows (identity, endpointType, ...), without participantId. */
  info: Record<string, unknown>;
  /** The bot's own participant (myParticipantId). */
  isBot: boolean;
  /** Muted, by the person or by the bot. */
  isMuted: boolean;
  /** Muted by the bot (participant mute, or the bot's own mute): the audio stream's serverMuted. */
  serverMuted: boolean;
  isInLobby: boolean;
  sharingScreen: boolean;
  recordingStatus: RecordingStatus | null;
  metadata: string | null;
  /** The audio stream's sourceId, unique within the call. */
  sourceId: string;
  joinedAt: number;
}

export type ParticipantPatch = Partial<
  Pick<ParticipantRecord, 'isMuted' | 'serverMuted' | 'sharingScreen' | 'recordingStatus' | 'isInLobby'>
>;

/** A person about to join: everything but what the store assigns (sourceId). */
export type NewParticipant = Omit<ParticipantRecord, 'sourceId'>;

const bad = (detail: string) => graphErrors.invalidRequest({ detail });
const badControl = (detail: string) => graphErrors.invalidControlRequest({ detail });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A participant as Graph puts it on the wire (participant.md). */
export function toGraphParticipant(p: ParticipantRecord): Record<string, unknown> {
  const mediaStreams: Record<string, unknown>[] = [
    {
      '@odata.type': '#microsoft.graph.mediaStream',
      mediaType: 'audio',
      sourceId: p.sourceId,
      direction: 'sendReceive',
      serverMuted: p.serverMuted,
    },
  ];
  if (p.sharingScreen)
    mediaStreams.push({
      '@odata.type': '#microsoft.graph.mediaStream',
      mediaType: 'videoBasedScreenSharing',
      sourceId: `${p.sourceId}-ss`,
      direction: 'sendOnly',
      serverMuted: false,
    });
  const out: Record<string, unknown> = {
    '@odata.type': '#microsoft.graph.participant',
    id: p.id,
    info: { '@odata.type': '#microsoft.graph.participantInfo', ...p.info, participantId: p.id },
    isMuted: p.isMuted,
    isInLobby: p.isInLobby,
    metadata: p.metadata,
    mediaStreams,
  };
  if (p.recordingStatus) out.recordingInfo = { '@odata.type': '#microsoft.graph.recordingInfo', recordingStatus: p.recordingStatus };
  return out;
}

/**
 * A roster change: Graph sends `updated` on `.../participants` with the whole roster as it is
 * now (participant-invite.md); someone who left is simply no longer in it (docs/decisions.md).
 */
export function rosterNotification(roster: ParticipantRecord[]): CallNotification {
  return { changeType: 'updated', resourcePath: '/participants', resourceData: {}, resourceList: roster.map(toGraphParticipant) };
}

function identityInfo(identity: Record<string, unknown>): Record<string, unknown> {
  return { identity: { '@odata.type': '#microsoft.graph.identitySet', ...identity }, endpointType: 'default' };
}

/**
 * Who is in a call once its media flows: the bot, and the other side of a peer-to-peer or group
 * call (the targets of an outgoing call, the caller of an incoming one). A meeting's people join
 * through the control API. Ids are fixed per call so seeding twice changes nothing.
 */
export function initialRoster(call: CallRecord, now: number): NewParticipant[] {
  const r = call.resource;
  const base = {
    callId: call.id,
    isMuted: false,
    serverMuted: false,
    isInLobby: false,
    sharingScreen: false,
    metadata: null,
    joinedAt: now,
  };
  const bot: NewParticipant = {
    ...base,
    id: typeof r.myParticipantId === 'string' ? r.myParticipantId : `${call.id}-bot`,
    isBot: true,
    recordingStatus: null,
    info: identityInfo({
      application: { '@odata.type': '#microsoft.graph.identity', id: call.owner.appId, ...botDisplayName(r) },
    }),
  };
  const others: unknown[] = call.direction === 'incoming' ? (r.source ? [r.source] : []) : Array.isArray(r.targets) ? r.targets : [];
  const people = others.filter(isObject).map(
    (t, i): NewParticipant => ({
      ...base,
      id: peerParticipantId(call.id, i),
      isBot: false,
      recordingStatus: null,
      info: isObject(t.identity) ? identityInfo(stripType(t.identity)) : identityInfo({}),
    }),
  );
  return [bot, ...people];
}

/**
 * The participant id of the i-th other person of a call's initial roster (the caller of an
 * incoming call is 0): fixed per call, so a ring can name it before anyone has joined.
 */
export function peerParticipantId(callId: string, i: number): string {
  return `${callId.slice(0, 24)}${String(i + 1).padStart(12, '0')}`;
}

function botDisplayName(r: Record<string, unknown>): Record<string, unknown> {
  const source = r.source as { identity?: { application?: { displayName?: unknown } } } | undefined;
  const name = source?.identity?.application?.displayName;
  return typeof name === 'string' ? { displayName: name } : {};
}

function stripType(o: Record<string, unknown>): Record<string, unknown> {
  const { '@odata.type': _, ...rest } = o;
  return rest;
}

/**
 * POST /_callkeeper/calls/{id}/participants: someone joins. `identity` is a Graph identitySet
 * (`{"user": {"id": ..., "displayName": ...}}`); `displayName` alone makes a Teams user with a
 * fresh id. Optional: `isMuted`, `isInLobby`, `metadata`.
 */
export function validateJoin(input: unknown, callId: string, now: number): NewParticipant {
  if (!isObject(input))
    throw badControl('Send a JSON body such as {"displayName": "Adele"} or {"identity": {"user": {"id": "...", "displayName": "Adele"}}}.');
  let identity: Record<string, unknown>;
  if (input.identity !== undefined) {
    if (
      !isObject(input.identity) ||
      !['user', 'application', 'phone', 'guest', 'device'].some((k) => isObject((input.identity as Record<string, unknown>)[k]))
    )
      throw badControl("'identity' must be an identitySet with a user, application, phone, guest or device identity.");
    identity = stripType(input.identity);
  } else if (typeof input.displayName === 'string' && input.displayName.length > 0 && input.displayName.length <= 256) {
    identity = { user: { '@odata.type': '#microsoft.graph.identity', id: randomUUID(), displayName: input.displayName } };
  } else {
    throw badControl("Give 'identity' (an identitySet) or 'displayName' (1 to 256 characters).");
  }
  for (const k of ['isMuted', 'isInLobby'] as const)
    if (input[k] !== undefined && typeof input[k] !== 'boolean') throw badControl(`'${k}' must be true or false.`);
  if (input.metadata !== undefined && input.metadata !== null && (typeof input.metadata !== 'string' || input.metadata.length > 4096))
    throw badControl("'metadata' must be a string of at most 4096 characters.");
  return {
    id: randomUUID(),
    callId,
    info: identityInfo(identity),
    isBot: false,
    isMuted: input.isMuted === true,
    serverMuted: false,
    isInLobby: input.isInLobby === true,
    sharingScreen: false,
    recordingStatus: null,
    metadata: typeof input.metadata === 'string' ? input.metadata : null,
    joinedAt: now,
  };
}

/** POST .../participants/invite: `{participants: invitationParticipantInfo[1..5], clientContext?}` (participant-invite.md). */
export function validateInvite(input: unknown): { participants: Record<string, unknown>[]; clientContext: string | null } {
  if (!isObject(input)) throw graphErrors.invalidJson();
  const clientContext = validateClientContext(input.clientContext);
  const list = input.participants;
  if (!Array.isArray(list) || list.length === 0) throw bad("Property 'participants' is required: the people to invite.");
  if (list.length > 5) throw bad("Property 'participants' may name at most 5 people.");
  list.forEach((p, i) => {
    if (!isObject(p) || !isObject(p.identity)) throw bad(`Property 'participants[${i}].identity' is required.`);
    const ids = p.identity as Record<string, unknown>;
    if (!['user', 'application', 'phone', 'guest'].some((k) => isObject(ids[k])))
      throw bad(`Property 'participants[${i}].identity' must name a user, application, phone or guest.`);
  });
  for (const k of Object.keys(input))
    if (!['participants', 'clientContext', '@odata.type'].includes(k))
      throw bad(`The property '${k}' does not exist on type 'microsoft.graph.invite'.`);
  return { participants: list as Record<string, unknown>[], clientContext };
}

/** clientContext: optional, a string of at most 256 characters (every action's documentation). */
export function validateClientContext(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw bad("Property 'clientContext' must be a string.");
  if (v.length > 256) throw bad("Property 'clientContext' can have a maximum of 256 characters.");
  return v;
}

/** The people an accepted invitation adds to the roster. */
export function invitees(callId: string, infos: Record<string, unknown>[], now: number): NewParticipant[] {
  return infos.map((p) => ({
    id: randomUUID(),
    callId,
    info: identityInfo(stripType(p.identity as Record<string, unknown>)),
    isBot: false,
    isMuted: false,
    serverMuted: false,
    isInLobby: false,
    sharingScreen: false,
    recordingStatus: null,
    metadata: null,
    joinedAt: now,
  }));
}
