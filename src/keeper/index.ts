/**
 * The keep-alive runtime for Microsoft Graph calls (`callkeeper/keeper`). See the README, "The keep-alive runtime".
 */
export { type ClientCredentialsOptions, clientCredentials, DEFAULT_AUTHORITY, GRAPH_DEFAULT_SCOPE } from './client-credentials.js';
export type { FetchLike } from './http-send.js';
export { KeepAlive, type KeepAliveStats } from './keep-alive.js';
export type {
  AtRiskEvent,
  AttemptFailedEvent,
  DeadlineMissedEvent,
  EndedEvent,
  HookFailedEvent,
  KeepAliveEvents,
  SentEvent,
} from './keep-alive-events.js';
export type { KeepAliveOptions } from './keep-alive-options.js';
export type { RetryOptions } from './retry-policy.js';
export type { AccessTokenLike, GetToken, TokenCredentialLike } from './token-source.js';
export type { TrackOptions } from './tracked-call.js';
