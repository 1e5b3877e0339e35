import type { CallKind } from '../calls/validate-create.js';
import { graphErrors } from '../errors/graph-errors.js';

/**
 * Application permissions that allow creating each kind of call (the permissions table of https://learn.microsoft.com/graph/api/application-post-calls). Graph checks
 * permissions when a call is created; keepAlive, get and hang-up check only ownership.
 */
export const CREATE_ROLES: Readonly<Record<CallKind, readonly string[]>> = {
  peerToPeer: ['Calls.Initiate.All'],
  group: ['Calls.InitiateGroupCall.All'],
  meeting: ['Calls.JoinGroupCall.All', 'Calls.JoinGroupCallAsGuest.All', 'Calls.JoinGroupCalls.Chat'],
};

/** App-hosted media needs this in addition to a create permission. */
export const MEDIA_ROLE = 'Calls.AccessMedia.All';

/** Throws Graph's 403 unless `roles` allow creating a call of this kind. */
export function checkCreatePermission(roles: readonly string[], kind: CallKind, appHostedMedia: boolean): void {
  const allowed = CREATE_ROLES[kind];
  if (!allowed.some((r) => roles.includes(r))) throw graphErrors.missingRole();
  if (appHostedMedia && !roles.includes(MEDIA_ROLE)) throw graphErrors.missingRole();
}
