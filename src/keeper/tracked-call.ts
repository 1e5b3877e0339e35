import type { HeapItem } from './indexed-heap.js';
import type { EndedEvent } from './keep-alive-events.js';

/** What `keeper.track()` accepts besides the call id. */
export interface TrackOptions {
  /** Clean-up hook: runs exactly once, when Graph answers 404 for the call. */
  onEnded?: (event: EndedEvent) => void | Promise<void>;
  /**
   * When the call last had a successful keepAlive, or started (epoch ms on the keeper's clock).
   * Default: now. Tells the keeper how much of the 45 minutes is already used up.
   */
  lastKeepAliveAt?: number;
}

/** The keeper's state for one call. Lives in one of the two heaps, or is in flight. */
export interface TrackedCall extends HeapItem {
  readonly id: string;
  /** Milliseconds into the interval at which this call's keepAlives go out. */
  readonly phase: number;
  onEnded: TrackOptions['onEnded'];
  /** When the next attempt is due (key of the waiting heap). */
  dueAt: number;
  /** Last successful keepAlive's send time, or the moment the 45 minutes started counting. */
  lastSuccessAt: number;
  /** lastSuccessAt + timeout: when Graph ends the call at the latest (key of the ready heap). */
  deadline: number;
  /** Failed attempts in a row. */
  failures: number;
  atRiskReported: boolean;
  missedReported: boolean;
  /** Untracked or ended: whatever answer is still on its way is ignored. */
  gone: boolean;
}
