/**
 * The keep-alive runtime for Microsoft Graph calls (`callkeeper/keeper`). See the README, "The keep-alive runtime".
 */
export {
  type ClientCredentialsOptions,
  clientCredentials,
  DEFAULT_AUTHORITY,
  GRAPH_DEFAULT_SCOPE,
  TokenRequestError,
} from './client-credentials.js';
export type { EndBreakerOptions } from './end-breaker.js';
export { CALL_NOT_FOUND_CODE, type PermanentKind } from './failure-kinds.js';
export type { FetchLike } from './http-send.js';
export { KeepAlive, type KeepAliveStats } from './keep-alive.js';
export type {
  AtRiskEvent,
  AttemptFailedEvent,
  CircuitClosedEvent,
  CircuitOpenEvent,
  DeadlineMissedEvent,
  EndedEvent,
  HookFailedEvent,
  KeepAliveEvents,
  PermanentErrorEvent,
  RequestIds,
  SentEvent,
} from './keep-alive-events.js';
export type { CallTarget, KeepAliveOptions } from './keep-alive-options.js';
export type { KeeperLogger } from './keeper-logger.js';
export { type KeeperMetrics, type KeeperMetricsOptions, keeperMetrics } from './metrics.js';
export type { RetryOptions } from './retry-policy.js';
export type { AccessTokenLike, GetToken, TokenCredentialLike } from './token-source.js';
export type { CallState, LastError, TrackOptions } from './tracked-call.js';
export { KEEPER_VERSION, USER_AGENT } from './version.js';
