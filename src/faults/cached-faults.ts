import type { StoreChange } from '../store/clock-port.js';
import type { ConsumeResult, FaultRule, FaultStore } from '../store/fault-store.js';

const live = (rules: FaultRule[], now: number): FaultRule[] =>
  rules.length === 0 ? [] : rules.filter((r) => (r.until === null || r.until > now) && (r.remaining === null || r.remaining > 0));

/**
 * The fault rules the injector asks for on every request, kept in memory between changes: with
 * a network store (Redis) a request with no rule armed then costs no round trip for them.
 * Any instance's add, remove or clear is announced on the store's change feed (`faults`) and
 * empties the cache; a re-read at most `maxAgeMs` (wall) later covers a missed notice. Taking a
 * rule (consumeFault) always goes to the store, so a `count` still holds across instances; what
 * it answers updates the cached rule. The control routes list and change rules through the
 * store itself, never through this cache.
 */
export class CachedFaults implements FaultStore {
  private rules: FaultRule[] | undefined;
  private readAt = 0;
  /** Bumped by every change notice: a read that began before one is not kept. */
  private generation = 0;

  constructor(
    private readonly store: FaultStore,
    watch: (listener: (change: StoreChange) => void) => () => void,
    private readonly maxAgeMs = 1_000,
    private readonly wall: () => number = Date.now,
  ) {
    watch((change) => {
      if (change.kind === 'faults') this.forget();
    });
  }

  async listFaults(now: number): Promise<FaultRule[]> {
    const fresh = this.cachedFaults(now);
    if (fresh) return fresh;
    const generation = this.generation;
    const readAt = this.wall();
    const rules = await this.store.listFaults(now);
    if (generation === this.generation) {
      this.rules = rules;
      this.readAt = readAt;
    }
    return live(rules, now);
  }

  cachedFaults(now: number): FaultRule[] | undefined {
    const rules = this.rules;
    if (!rules || this.wall() - this.readAt > this.maxAgeMs) return undefined;
    return live(rules, now);
  }

  async consumeFault(id: string, now: number): Promise<ConsumeResult> {
    const taken = await this.store.consumeFault(id, now);
    if (this.rules) {
      this.rules = taken.ok
        ? this.rules.map((r) => (r.id === id ? { ...r, remaining: taken.remaining } : r))
        : this.rules.filter((r) => r.id !== id);
    }
    return taken;
  }

  async addFault(rule: FaultRule): Promise<void> {
    await this.store.addFault(rule);
    this.forget();
  }

  async removeFault(id: string): Promise<{ ok: true } | { ok: false; reason: 'notFound' }> {
    const removed = await this.store.removeFault(id);
    this.forget();
    return removed;
  }

  async clearFaults(): Promise<number> {
    const n = await this.store.clearFaults();
    this.forget();
    return n;
  }

  private forget(): void {
    this.rules = undefined;
    this.generation++;
  }
}
