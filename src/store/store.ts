import type { AppsPort } from './apps-port.js';
import type { CallsPort } from './calls-port.js';
import type { ClockPort } from './clock-port.js';
import type { OutboxPort } from './outbox-port.js';
import type { SettingsPort } from './settings-port.js';

/**
 * Where callkeeper's state lives: one object bundling every port (each in its own file, with
 * what it guarantees). A new concern adds a port file and extends this interface.
 * Implementations: SQLite (embedded, the default), Redis (shared by several instances).
 * The shared contract tests in test/store-contract.ts hold every implementation to this.
 */
export interface Store extends CallsPort, OutboxPort, SettingsPort, AppsPort, ClockPort {
  /** Where the data lives, for people ("memory", a path or a redis:// URL without password). */
  readonly location: string;
  /** Which implementation: "sqlite" or "redis". */
  readonly kind: string;
  /** Flushes and releases the store; later calls reject. */
  close(): Promise<void>;
}

/** The former name of Store. */
export type CallStore = Store;

export type { AddAppResult, AppsPort } from './apps-port.js';
export type { Answer, CallsPort, ExpiryResults, ListPage, ListQuery, NewCall, NextDue } from './calls-port.js';
export type { ClockPort, ClockState, StoreChange } from './clock-port.js';
export type {
  CallSnapshot,
  DeliveryAttempt,
  DeliveryOutcome,
  DeliveryQuery,
  FinishResult,
  OutboxBounds,
  OutboxEntry,
  OutboxFact,
  OutboxPort,
  OutboxStats,
  Transition,
} from './outbox-port.js';
export type { Refusal, WriteResult } from './results.js';
export type { SettingsPort } from './settings-port.js';
export { DuplicateCallError, StoreLockedError, StoreUnavailableError } from './store-errors.js';
