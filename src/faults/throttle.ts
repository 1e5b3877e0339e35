import type { Clock } from '../clock/clock.js';
import type { GraphError } from '../errors/graph-errors.js';
import type { ThrottleStore } from '../store/throttle-store.js';
import { faultError } from './fault-effects.js';

export interface ThrottleOptions {
  /** Requests per window per app per tenant; Graph's communications limit is 50,000 per 15 s. */
  limit: number;
  windowMs: number;
}

/** Graph's documented limit for the communications API (concepts/throttling-limits.md). */
export const GRAPH_COMMUNICATIONS_LIMIT: ThrottleOptions = { limit: 50_000, windowMs: 15_000 };

/**
 * Throttling as Graph does it for communications: a fixed window of virtual time per app and
 * tenant, counted in the store so every instance shares the count.
 */
export class Throttle {
  constructor(
    private readonly store: ThrottleStore,
    private readonly clock: Clock,
    readonly options: ThrottleOptions,
  ) {}

  /** The 429 to answer with, or undefined when the request is within the limit. */
  async check(appId: string, tenantId: string): Promise<GraphError | undefined> {
    const r = await this.store.hitThrottle(`${tenantId}/${appId}`, this.clock.now(), this.options.windowMs, this.options.limit);
    if (r.ok) return undefined;
    return faultError(429, Math.max(1, Math.ceil(r.retryAfterMs / 1000)));
  }
}
