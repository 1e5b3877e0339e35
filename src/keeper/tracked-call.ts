import type { PermanentKind } from './failure-kinds.js';
import type { HeapItem } from './indexed-heap.js';
import type { EndedEvent } from './keep-alive-events.js';
import type { CallTarget } from './keep-alive-options.js';
import type { TokenSource } from './token-source.js';

/** What `keeper.track()` accepts besides the call id. */
export interface TrackOptions extends CallTarget {
  /** Clean-up hook: runs exactly once, when Graph answers 404 `8522` for the call. */
  onEnded?: (event: EndedEvent) => void | Promise<void>;
  /**
   * When the call last had a successful keepAlive, or started (epoch ms on the keeper's clock).
   * Default: now. Tells the keeper how much of the 45 minutes is already used up.
   */
  lastKeepAliveAt?: number;
  /** Multi-tenant bots: the call's tenant; its baseUrl and tokens come from the keeper's `tenants` resolver. */
  tenant?: string;
}

/** Where a call's requests go, shared by every call of one tenant or credential. */
export interface ResolvedTarget {
  readonly callsUrl: string;
  readonly tokens: TokenSource;
}

/** The latest failure of a call, as `calls()` shows it. */
export interface LastError {
  at: number;
  status?: number;
  code?: string;
  message?: string;
  permanent?: PermanentKind;
  requestId?: string;
  clientRequestId?: string;
}

/**
 * The keeper's state for one call. Lives in one of the two heaps, or is in flight. Kept small
 * (100,000 of them in a bot's memory): the deadline is not stored, it is lastSuccessAt + timeout.
 */
export interface TrackedCall extends HeapItem {
  readonly id: string;
  /** Milliseconds into the interval at which this call's keepAlives go out. */
  readonly phase: number;
  readonly target: ResolvedTarget;
  readonly tenant: string | undefined;
  /** The per-call baseUrl, when one was given (shared keeping stores it). */
  readonly baseUrl: string | undefined;
  onEnded: TrackOptions['onEnded'];
  /** When the next attempt is due (key of the waiting heap). */
  dueAt: number;
  /** Last successful keepAlive's send time, or the moment the 45 minutes started counting. */
  lastSuccessAt: number;
  /** Failed attempts in a row. */
  failures: number;
  atRiskReported: boolean;
  missedReported: boolean;
  lastError: LastError | undefined;
  /** The ids of the latest request, for events about the call. */
  lastRequestId: string | undefined;
  lastClientRequestId: string | undefined;
  /** Untracked or ended: whatever answer is still on its way is ignored. */
  gone: boolean;
  /** Shared keeping: the fencing token of the lease this replica holds the call under. */
  fence: number;
  /** Shared keeping: the call's lease bucket (-1 when not shared). */
  bucket: number;
  /** Shared keeping: the replica that tracked it. */
  trackedBy: string | undefined;
  /**
   * While a request is on the wire: settles once its answer is handled. Always present (set to
   * undefined when idle) so every call keeps one object shape: a property added later would cost
   * each of 100,000 calls a separate property array.
   */
  settled: Promise<void> | undefined;
}

/** One tracked call as `keeper.calls()` lists it. */
export interface CallState {
  callId: string;
  /** "ok", "failing" (last attempt failed), "atRisk" (no success for `atRiskAfter`), "permanent" (on the slow schedule). */
  state: 'ok' | 'failing' | 'atRisk' | 'permanent';
  /** Last successful keepAlive (or when tracking began, before the first). */
  lastSuccessAt: number;
  /** When Graph ends the call at the latest without another success. */
  deadline: number;
  /** When the next attempt is due, if this keeper holds the call. */
  nextAttemptAt?: number;
  /** Failed attempts in a row. */
  attempts: number;
  /** The replica that holds the call's lease and sends its keepAlives (this keeper's `replicaId` unless shared). */
  leaseHolder: string | undefined;
  /** Shared keeping: the replica that tracked it (its `onEnded` runs there). */
  trackedBy?: string;
  tenant?: string;
  baseUrl?: string;
  lastError?: LastError;
}
