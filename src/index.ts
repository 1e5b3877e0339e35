export { type AppRegistration, CALLS_ROLES, DEFAULT_APP } from './auth/apps.js';
export { type CallRecord, type CallState, KEEPALIVE_TIMEOUT_RESULT, type ResultInfo } from './calls/call-types.js';
export { type Clock, MAX_TIME_SCALE, MAX_VIRTUAL_TIME, ManualClock, ScaledClock, type Timer } from './clock/clock.js';
export { GraphError, graphErrors } from './errors/graph-errors.js';
export { type ConnectionLimits, DEFAULT_LIMITS } from './http/app.js';
export { CONTROL_TOKEN_HEADER, type ControlGuardOptions, controlGuard } from './http/control-guard.js';
export { type Callkeeper, type CallkeeperConfig, createCallkeeper, DEFAULTS } from './server.js';
export type { CallStore, NewCall } from './store/call-store.js';
export { SqliteCallStore } from './store/sqlite-store.js';
