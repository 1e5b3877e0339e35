import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { validateCallbackUri } from '../calls/validate-create.js';
import { graphErrors } from '../errors/graph-errors.js';
import { type AppRegistration, CALLS_ROLES } from './apps.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Roles callkeeper knows; Calls.JoinGroupCalls.Chat is the resource-specific (RSC) one. */
export const KNOWN_ROLES = new Set<string>([...CALLS_ROLES, 'Calls.JoinGroupCalls.Chat']);

/** Field limits of a registration (Entra ID's own: displayName 256, secrets far shorter than this). */
export const MAX_DISPLAY_NAME = 256;
export const MAX_SECRET = 256;

const bad = (detail: string) => graphErrors.invalidControlRequest({ detail });

/**
 * Reads one app registration as given in a config file or to POST /_callkeeper/apps. Missing
 * ids and secret are generated; roles default to none (grant them explicitly).
 */
export function parseAppRegistration(input: unknown, where: string): AppRegistration {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw bad(`${where}: an app registration must be a JSON object.`);
  const o = input as Record<string, unknown>;
  const str = (k: string) => {
    const v = o[k];
    if (v !== undefined && typeof v !== 'string') throw bad(`${where}: '${k}' must be a string.`);
    return v as string | undefined;
  };
  const tenantId = str('tenantId') ?? randomUUID();
  const clientId = str('clientId') ?? randomUUID();
  for (const [k, v] of [
    ['tenantId', tenantId],
    ['clientId', clientId],
  ] as const) {
    if (!GUID.test(v)) throw bad(`${where}: '${k}' must be a GUID.`);
  }
  const roles = o.roles ?? [];
  if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string' || !KNOWN_ROLES.has(r))) {
    throw bad(`${where}: 'roles' must be an array of ${[...KNOWN_ROLES].join(', ')}.`);
  }
  const callbackUri = str('callbackUri');
  if (callbackUri !== undefined) {
    try {
      validateCallbackUri(callbackUri, false);
    } catch (err) {
      throw bad(`${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const clientSecret = str('clientSecret') ?? randomBytes(24).toString('base64url');
  if (clientSecret.length < 8 || clientSecret.length > MAX_SECRET)
    throw bad(`${where}: 'clientSecret' must be from 8 to ${MAX_SECRET} characters.`);
  const displayName = str('displayName') ?? `app ${clientId.slice(0, 8)}`;
  if (displayName.length === 0 || displayName.length > MAX_DISPLAY_NAME)
    throw bad(`${where}: 'displayName' must be from 1 to ${MAX_DISPLAY_NAME} characters.`);
  return {
    displayName,
    tenantId: tenantId.toLowerCase(),
    clientId: clientId.toLowerCase(),
    clientSecret,
    roles: [...new Set(roles as string[])],
    ...(callbackUri !== undefined ? { callbackUri } : {}),
  };
}

/** `--config callkeeper.json`: `{ "apps": [ {displayName, tenantId, clientId, clientSecret, roles}, ... ] }`. */
export function loadConfigFile(path: string): { apps: AppRegistration[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`--config ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const apps = (parsed as { apps?: unknown }).apps;
  if (!Array.isArray(apps)) throw new Error(`--config ${path}: expected {"apps": [...]}`);
  try {
    return { apps: apps.map((a, i) => parseAppRegistration(a, `apps[${i}]`)) };
  } catch (err) {
    throw new Error(`--config ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
