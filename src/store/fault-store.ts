/** Which traffic a fault rule acts on: Graph requests from the bot, or notifications to it. */
export type FaultTarget = 'graph' | 'notifications';

export interface FaultMatch {
  /** HTTP method, upper case. */
  method?: string;
  /** Glob over the Graph path after the version (or the callback URL's path, for notifications). */
  path?: string;
  appId?: string;
  callId?: string;
}

export interface FaultEffect {
  status?: 429 | 500 | 502 | 503 | 504;
  /** Seconds, sent as Retry-After. */
  retryAfter?: number;
  /** Wall-clock delay before the effect (or before the request proceeds). */
  latencyMs?: number;
  /** Destroy the connection instead of answering. */
  reset?: true;
}

/** A fault rule as stored: the rule a user posted, and how many applications it has left. */
export interface FaultRule {
  id: string;
  target: FaultTarget;
  match: FaultMatch;
  effect: FaultEffect;
  /** Probability, 0..1, that a matching request is faulted; 1 when absent. */
  rate: number;
  /** Applications left; null: unlimited. */
  remaining: number | null;
  /** The count the rule was created with; null: unlimited. */
  count: number | null;
  /** Virtual epoch ms after which the rule no longer applies; null: never. */
  until: number | null;
  createdAt: number;
}

export type ConsumeResult = { ok: true; remaining: number | null } | { ok: false; reason: 'notFound' | 'exhausted' | 'expired' };

/**
 * Where fault rules live, shared by every instance on the store. Each method is one atomic
 * step; `now` (virtual epoch ms) is passed in, a store never reads a clock.
 */
export interface FaultStore {
  /**
   * Stores a rule, replacing any with the same id (rules from the config file keep their
   * ids, so a restart re-arms them instead of adding copies).
   */
  addFault(rule: FaultRule): Promise<void>;

  /** Rules that can still apply at `now` (not exhausted, `until` not passed), oldest first. */
  listFaults(now: number): Promise<FaultRule[]>;

  /**
   * What listFaults(now) would answer, when the store can tell without a read (its copy of the
   * rules is fresh); undefined when a read is due. Optional: a store that keeps no copy leaves it
   * out. Lets a request with nothing armed skip the rules without a promise (fault-hooks.ts).
   */
  cachedFaults?(now: number): FaultRule[] | undefined;

  /** Deletes one rule; `notFound` if there was none with that id. */
  removeFault(id: string): Promise<{ ok: true } | { ok: false; reason: 'notFound' }>;

  /** Deletes every rule; returns how many there were. */
  clearFaults(): Promise<number>;

  /**
   * Takes one application of a rule: with a count, decrements it, and of several concurrent
   * takers of the last one exactly one gets `ok`. Fails, changing nothing, when the rule is
   * gone, spent (`exhausted`) or past its `until` at `now` (`expired`).
   */
  consumeFault(id: string, now: number): Promise<ConsumeResult>;
}
