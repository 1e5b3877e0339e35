import { graphErrors } from '../errors/graph-errors.js';
import { validateCallbackUri, validateMediaConfig, validateModalities, validateTarget } from './validate-create.js';

const bad = (detail: string) => graphErrors.invalidRequest({ detail });
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function objectBody(input: unknown, what: string): Record<string, unknown> {
  if (input === undefined || input === null) throw bad(`The request body is required: ${what}.`);
  if (!isObject(input)) throw graphErrors.invalidJson();
  return input;
}

/** What the registration of the rung bot says: its name, and its default callback. */
export interface RungBot {
  displayName?: string;
  callbackUri?: string | undefined;
}

export interface IncomingRing {
  appId: string;
  tenantId: string;
  resource: Record<string, unknown>;
  /** A compliance-recording bot is rung for the caller's call: 5 s to answer (docs/decisions.md). */
  policyBasedRecording: boolean;
}

/**
 * POST /_callkeeper/incoming-calls: `{appId, tenantId?, callbackUri, source?, requestedModalities?,
 * policyBasedRecording?}`. The caller defaults to a Teams user; modalities to audio.
 */
export function validateIncoming(
  input: unknown,
  opts: { strictCallbackUri: boolean; defaultTenantId?: string; bot?: RungBot | undefined },
): IncomingRing {
  const body = objectBody(input, 'appId and callbackUri');
  if (typeof body.appId !== 'string' || !GUID.test(body.appId))
    throw bad("Property 'appId' is required: the client id of the bot to ring.");
  const tenantId = body.tenantId ?? opts.defaultTenantId;
  if (tenantId !== undefined && (typeof tenantId !== 'string' || !GUID.test(tenantId))) throw bad("Property 'tenantId' must be a GUID.");
  // Graph rings the bot at its registered calling webhook; here the ring may name one instead.
  const callbackUri = validateCallbackUri(body.callbackUri ?? opts.bot?.callbackUri, opts.strictCallbackUri);
  const modalities =
    body.requestedModalities === undefined ? ['audio'] : validateModalities(body.requestedModalities, 'requestedModalities');
  const source = body.source ?? {
    '@odata.type': '#microsoft.graph.participantInfo',
    identity: {
      '@odata.type': '#microsoft.graph.identitySet',
      user: { '@odata.type': '#microsoft.graph.identity', id: '8d4d8ca3-0000-4000-8000-0000ca11e400', displayName: 'Caller' },
    },
  };
  const policyBasedRecording = body.policyBasedRecording ?? false;
  if (typeof policyBasedRecording !== 'boolean')
    throw bad("Property 'policyBasedRecording' must be true (a compliance-recording bot is rung) or false.");
  if (!isObject(source) || !isObject(source.identity)) throw bad("Property 'source' must be a participantInfo with an identity.");
  validateTarget(source, 'source');
  const application: Record<string, unknown> = { '@odata.type': '#microsoft.graph.identity', id: body.appId.toLowerCase() };
  if (opts.bot?.displayName) application.displayName = opts.bot.displayName;
  const bot = {
    '@odata.type': '#microsoft.graph.invitationParticipantInfo',
    identity: { '@odata.type': '#microsoft.graph.identitySet', application },
  };
  return {
    appId: body.appId.toLowerCase(),
    tenantId: (typeof tenantId === 'string' ? tenantId : '').toLowerCase(),
    resource: { callbackUri, source, requestedModalities: modalities, targets: [bot] },
    policyBasedRecording,
  };
}

/**
 * POST .../answer: `{callbackUri?, mediaConfig, acceptedModalities, participantCapacity?}`.
 * Without callbackUri, "the bot's global callback URI will be used" (call-answer.md): the app
 * registration's `callbackUri`; with neither, 400.
 */
export function validateAnswer(
  input: unknown,
  opts: { strictCallbackUri: boolean; defaultCallbackUri?: string | undefined },
): Record<string, unknown> {
  const body = objectBody(input, 'mediaConfig and acceptedModalities');
  const given = body.callbackUri ?? opts.defaultCallbackUri;
  if (given === undefined || given === null || given === '') {
    throw bad(
      'Property \'callbackUri\' is required: the answer gives none and the app registration has no default callbackUri (POST /_callkeeper/apps with "callbackUri").',
    );
  }
  const callbackUri = validateCallbackUri(given, opts.strictCallbackUri);
  const mediaConfig = validateMediaConfig(body.mediaConfig);
  const acceptedModalities = validateModalities(body.acceptedModalities, 'acceptedModalities');
  if (
    body.participantCapacity !== undefined &&
    body.participantCapacity !== null &&
    (!Number.isInteger(body.participantCapacity) || (body.participantCapacity as number) < 1)
  ) {
    throw bad("Property 'participantCapacity' must be a positive whole number.");
  }
  return { callbackUri, mediaConfig, requestedModalities: acceptedModalities };
}

/** POST .../reject: `{reason?: none|busy|forbidden, callbackUri?}`. */
export function validateReject(input: unknown): 'none' | 'busy' | 'forbidden' {
  const body = input === undefined || input === null ? {} : input;
  if (!isObject(body)) throw graphErrors.invalidJson();
  const reason = body.reason ?? 'none';
  if (reason !== 'none' && reason !== 'busy' && reason !== 'forbidden')
    throw bad("Property 'reason' must be one of none, busy, forbidden.");
  return reason;
}

/** POST .../redirect: `{targets: 1..25 invitationParticipantInfo, timeout?: 15..90, callbackUri?}`. */
export function validateRedirect(input: unknown): void {
  const body = objectBody(input, 'targets');
  const targets = body.targets;
  if (!Array.isArray(targets) || targets.length === 0) throw bad("Property 'targets' is required: 1 to 25 participants to redirect to.");
  if (targets.length > 25) throw bad("Property 'targets' may name at most 25 participants.");
  for (const [i, t] of targets.entries()) validateTarget(t, `targets[${i}]`);
  const timeout = body.timeout;
  if (timeout !== undefined && timeout !== null && (!Number.isInteger(timeout) || (timeout as number) < 15 || (timeout as number) > 90)) {
    throw bad("Property 'timeout' must be a whole number of seconds from 15 to 90.");
  }
}
