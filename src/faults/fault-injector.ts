import type { Clock } from '../clock/clock.js';
import type { FaultRule, FaultStore, FaultTarget } from '../store/fault-store.js';
import { globToRegExp } from './glob.js';

/** What a fault rule is matched against. */
export interface FaultSubject {
  method: string;
  /** The Graph path after the version (or the callback URL's path). */
  path: string;
  appId: string | null;
  callId: string | null;
}

const globs = new Map<string, RegExp>();
function glob(pattern: string): RegExp {
  let re = globs.get(pattern);
  if (!re) {
    if (globs.size > 1000) globs.clear();
    re = globToRegExp(pattern);
    globs.set(pattern, re);
  }
  return re;
}

export function matches(rule: FaultRule, s: FaultSubject): boolean {
  const m = rule.match;
  if (m.method !== undefined && m.method !== s.method.toUpperCase()) return false;
  if (m.appId !== undefined && m.appId !== s.appId) return false;
  if (m.callId !== undefined && m.callId !== s.callId) return false;
  if (m.path !== undefined && !glob(m.path).test(s.path)) return false;
  return true;
}

/**
 * Decides which fault, if any, applies to a request or a delivery: the oldest live rule that
 * matches, passes its `rate` draw and still has a count to take (taken atomically in the
 * store, so a `count` holds across every instance).
 */
export class FaultInjector {
  constructor(
    private readonly store: FaultStore,
    private readonly clock: Clock,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * True when the store can tell at once that no rule for `target` is live now: pick() would
   * then answer undefined, and the caller may skip it (and its promise).
   */
  idle(target: FaultTarget): boolean {
    const rules = this.store.cachedFaults?.(this.clock.now());
    return rules !== undefined && !rules.some((r) => r.target === target);
  }

  async pick(target: FaultTarget, subject: FaultSubject): Promise<FaultRule | undefined> {
    const now = this.clock.now();
    for (const rule of await this.store.listFaults(now)) {
      if (rule.target !== target || !matches(rule, subject)) continue;
      if (rule.rate < 1 && this.random() >= rule.rate) continue;
      const taken = await this.store.consumeFault(rule.id, now);
      if (taken.ok) return { ...rule, remaining: taken.remaining };
    }
    return undefined;
  }
}
