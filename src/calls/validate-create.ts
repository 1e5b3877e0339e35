import { graphErrors } from '../errors/graph-errors.js';

/** Properties of microsoft.graph.call in Graph's v1.0 OpenAPI description (shared/graph). */
const CALL_PROPERTIES = new Set([
  'id',
  'callbackUri',
  'callChainId',
  'callOptions',
  'callRoutes',
  'chatInfo',
  'direction',
  'incomingContext',
  'mediaConfig',
  'mediaState',
  'meetingInfo',
  'myParticipantId',
  'requestedModalities',
  'resultInfo',
  'source',
  'state',
  'subject',
  'targets',
  'tenantId',
  'toneInfo',
  'transcription',
  'audioRoutingGroups',
  'contentSharingSessions',
  'operations',
  'participants',
]);

const MODALITIES = new Set(['audio', 'video', 'videoBasedScreenSharing', 'data']);
const SERVICE_HOSTED = 'microsoft.graph.serviceHostedMediaConfig';
const APP_HOSTED = 'microsoft.graph.appHostedMediaConfig';
const IDENTITY_KINDS = [
  'user',
  'application',
  'applicationInstance',
  'device',
  'phone',
  'guest',
  'encrypted',
  'onPremises',
  'acsUser',
  'spoolUser',
  'azureCommunicationServicesUser',
];
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A peer-to-peer call (one target), a group call (several) or joining a meeting. */
export type CallKind = 'peerToPeer' | 'group' | 'meeting';

export interface ValidatedCreate {
  body: Record<string, unknown>;
  /** app-hosted media needs Calls.AccessMedia.All as well (used by permission checks). */
  appHostedMedia: boolean;
  /** Which create permission applies (https://learn.microsoft.com/graph/api/application-post-calls, Permissions). */
  kind: CallKind;
}

export interface ValidateOptions {
  /** Graph's rule: callbackUri must be https. Off: http to a loopback host is accepted too. */
  strictCallbackUri: boolean;
}

const bad = (detail: string) => graphErrors.invalidRequest({ detail });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `#microsoft.graph.x` and `microsoft.graph.x` name the same type. */
function odataType(v: Record<string, unknown>): string | undefined {
  const t = v['@odata.type'];
  return typeof t === 'string' ? t.replace(/^#/, '') : undefined;
}

/** callbackUri: https, or (unless strict) http to a loopback host. Returns it. */
export function validateCallbackUri(cb: unknown, strict: boolean): string {
  if (cb === undefined || cb === null || cb === '') throw bad("Property 'callbackUri' is required.");
  if (typeof cb !== 'string') throw bad("Property 'callbackUri' must be a string.");
  let url: URL;
  try {
    url = new URL(cb);
  } catch {
    throw bad(`Property 'callbackUri' is not a valid absolute URL: '${cb.slice(0, 200)}'.`);
  }
  const httpsOnly = "Property 'callbackUri' must be an https URL";
  if (url.protocol !== 'https:') {
    if (url.protocol !== 'http:' || strict || !isLoopback(url.hostname)) {
      throw bad(strict ? `${httpsOnly}.` : `${httpsOnly} (http is accepted only to a loopback host).`);
    }
  }
  return cb;
}

/** A non-empty array of Graph modalities. */
export function validateModalities(modalities: unknown, name: string): string[] {
  if (modalities === undefined || modalities === null) throw bad(`Property '${name}' is required.`);
  if (!Array.isArray(modalities) || modalities.length === 0) throw bad(`Property '${name}' must be a non-empty array.`);
  for (const [i, m] of modalities.entries()) {
    if (typeof m !== 'string' || !MODALITIES.has(m)) {
      throw bad(
        `Property '${name}[${i}]' has an invalid value '${String(m)}'; expected one of audio, video, videoBasedScreenSharing, data.`,
      );
    }
  }
  return modalities as string[];
}

/**
 * serviceHostedMediaConfig, or appHostedMediaConfig with its blob. Joining a meeting may leave
 * the blob out (application-post-calls.md, example 6). Returns it.
 */
export function validateMediaConfig(media: unknown, opts: { blobOptional?: boolean } = {}): Record<string, unknown> {
  if (media === undefined || media === null) throw bad("Property 'mediaConfig' is required.");
  if (!isObject(media)) throw bad("Property 'mediaConfig' must be an object.");
  const mediaType = odataType(media);
  if (mediaType !== SERVICE_HOSTED && mediaType !== APP_HOSTED) {
    throw bad(
      "Property 'mediaConfig.@odata.type' must be '#microsoft.graph.serviceHostedMediaConfig' or '#microsoft.graph.appHostedMediaConfig'.",
    );
  }
  if (mediaType === APP_HOSTED && media.blob !== undefined && media.blob !== null && typeof media.blob !== 'string') {
    throw bad("Property 'mediaConfig.blob' must be a string.");
  }
  if (mediaType === APP_HOSTED && !opts.blobOptional && (typeof media.blob !== 'string' || media.blob === '')) {
    throw bad("Property 'mediaConfig.blob' is required for app-hosted media, except when joining a meeting.");
  }
  if (
    mediaType === SERVICE_HOSTED &&
    media.preFetchMedia !== undefined &&
    media.preFetchMedia !== null &&
    !Array.isArray(media.preFetchMedia)
  ) {
    throw bad("Property 'mediaConfig.preFetchMedia' must be an array.");
  }
  return media;
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Checks a create-call body the way Graph does and names the first offending field.
 * Throws the Graph error; returns the body with client-supplied read-only fields removed.
 */
export function validateCreateCall(input: unknown, opts: ValidateOptions): ValidatedCreate {
  if (input === undefined)
    throw bad('The request body is required: a call with callbackUri, requestedModalities, mediaConfig and targets or meetingInfo.');
  if (!isObject(input)) throw graphErrors.invalidJson();

  for (const key of Object.keys(input)) {
    if (!key.startsWith('@odata.') && !CALL_PROPERTIES.has(key)) {
      throw bad(
        `The property '${key}' does not exist on type 'microsoft.graph.call'. Make sure to only use property names that are defined by the type.`,
      );
    }
  }
  const type = odataType(input);
  if (type !== undefined && type !== 'microsoft.graph.call')
    throw bad(`Invalid @odata.type '${String(input['@odata.type'])}': expected '#microsoft.graph.call'.`);

  validateCallbackUri(input.callbackUri, opts.strictCallbackUri);

  validateModalities(input.requestedModalities, 'requestedModalities');

  const joining = isObject(input.meetingInfo);
  const mediaType = odataType(validateMediaConfig(input.mediaConfig, { blobOptional: joining }));

  const targets = input.targets;
  if (targets !== undefined && targets !== null) {
    if (!Array.isArray(targets)) throw bad("Property 'targets' must be an array.");
    for (const [i, t] of targets.entries()) validateTarget(t, `targets[${i}]`);
  }
  const meetingInfo = input.meetingInfo;
  if (meetingInfo !== undefined && meetingInfo !== null && !isObject(meetingInfo)) throw bad("Property 'meetingInfo' must be an object.");
  const chatInfo = input.chatInfo;
  if (chatInfo !== undefined && chatInfo !== null && !isObject(chatInfo)) throw bad("Property 'chatInfo' must be an object.");
  const hasTargets = Array.isArray(targets) && targets.length > 0;
  if (!hasTargets && !isObject(meetingInfo)) {
    throw bad("Either 'targets' (a peer-to-peer or group call) or 'meetingInfo' (joining a meeting) is required.");
  }
  if (isObject(chatInfo) && !isObject(meetingInfo)) throw bad("Property 'chatInfo' is only valid together with 'meetingInfo'.");

  for (const key of ['subject', 'callChainId', 'tenantId'] as const) {
    const v = input[key];
    if (v !== undefined && v !== null && typeof v !== 'string') throw bad(`Property '${key}' must be a string.`);
  }
  if (typeof input.callChainId === 'string' && !GUID.test(input.callChainId)) throw bad("Property 'callChainId' must be a GUID.");
  if (input.direction !== undefined && input.direction !== null && input.direction !== 'outgoing') {
    throw bad("Property 'direction' must be 'outgoing' when creating a call.");
  }
  if (input.callOptions !== undefined && input.callOptions !== null && !isObject(input.callOptions))
    throw bad("Property 'callOptions' must be an object.");
  // The caller's identity may be given (an application instance for PSTN calls) and is echoed
  // (application-post-calls.md, examples 6-10); otherwise it is the app's.
  if (input.source !== undefined && input.source !== null) validateTarget(input.source, 'source');

  // Read-only or server-assigned: Graph ignores what the client sends.
  const { id: _i, state: _s, resultInfo: _r, myParticipantId: _m, callRoutes: _cr, mediaState: _ms, ...body } = input;
  if (body.source === null) delete body.source;
  if (body.tenantId === null) delete body.tenantId;
  return {
    body,
    appHostedMedia: mediaType === APP_HOSTED,
    kind: isObject(meetingInfo) ? 'meeting' : Array.isArray(targets) && targets.length > 1 ? 'group' : 'peerToPeer',
  };
}

/** An invitationParticipantInfo (or participantInfo): an identity set naming someone with an id. */
export function validateTarget(t: unknown, where: string): void {
  if (!isObject(t)) throw bad(`Property '${where}' must be an invitationParticipantInfo object.`);
  const identity = t.identity;
  if (!isObject(identity)) throw bad(`Property '${where}.identity' is required (an identitySet).`);
  const present = IDENTITY_KINDS.filter((k) => identity[k] !== undefined && identity[k] !== null);
  if (present.length === 0) throw bad(`Property '${where}.identity' must name a user, application, phone or other identity.`);
  for (const k of present) {
    const id = identity[k];
    if (!isObject(id) || typeof id.id !== 'string' || id.id === '') throw bad(`Property '${where}.identity.${k}.id' is required.`);
  }
}
