import type { Cluster, Redis } from 'ioredis';
import type { ConsumeResult, FaultRule, FaultStore } from './fault-store.js';
import type { JournalEntry, JournalQuery, JournalStore } from './journal-store.js';
import { CHANGES_CHANNEL, unavailable } from './redis/redis-store.js';
import { FAULT_ADD } from './redis-control/fault-add.js';
import { FAULT_CLEAR } from './redis-control/fault-clear.js';
import { FAULT_CONSUME } from './redis-control/fault-consume.js';
import { FAULT_LIST } from './redis-control/fault-list.js';
import { FAULT_REMOVE } from './redis-control/fault-remove.js';
import { JOURNAL_APPEND } from './redis-control/journal-append.js';
import { JOURNAL_LIST } from './redis-control/journal-list.js';
import { THROTTLE_HIT } from './redis-control/throttle-hit.js';
import type { ThrottleResult, ThrottleStore } from './throttle-store.js';

type Client = Redis | Cluster;

/** Journal entries written by one script call at most. */
const JOURNAL_BATCH = 1_000;

/**
 * Fault rules, throttle counters and the request journal in Redis (or a Redis Cluster), shared
 * by every instance. One Lua script per operation (src/store/redis-control/, each with its KEYS,
 * ARGV and return values); `now` is an argument, never Redis's clock. Every key carries one hash
 * tag, so each script's keys share a cluster slot.
 */
export class RedisControlStore implements FaultStore, ThrottleStore, JournalStore {
  private readonly k;
  /** Journal entries of this turn of the event loop, sent together (see appendRequest). */
  private journalQueue: { entry: string; keep: number; resolve: () => void; reject: (err: unknown) => void }[] = [];

  constructor(
    private readonly redis: Client,
    prefix = 'callkeeper',
  ) {
    const tag = `{${prefix}:control}`;
    this.k = {
      order: `${tag}:faults`,
      seq: `${tag}:faults:seq`,
      rule: `${tag}:fault:`,
      throttle: `${tag}:throttle`,
      journal: `${tag}:journal`,
    };
    const scripts = {
      ckFaultAdd: [3, FAULT_ADD],
      ckFaultList: [2, FAULT_LIST],
      ckFaultConsume: [1, FAULT_CONSUME],
      ckFaultRemove: [2, FAULT_REMOVE],
      ckFaultClear: [2, FAULT_CLEAR],
      ckThrottleHit: [1, THROTTLE_HIT],
      ckJournalAppend: [1, JOURNAL_APPEND],
      ckJournalList: [1, JOURNAL_LIST],
    } as const;
    for (const [name, [numberOfKeys, lua]] of Object.entries(scripts)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
    }
  }

  /** A Redis that cannot be reached is StoreUnavailableError (a 503, as for the call store), never a 500. */
  private async run(name: string, ...args: (string | number)[]): Promise<unknown> {
    try {
      return await (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[name]?.(...args);
    } catch (err) {
      throw unavailable(err);
    }
  }

  private async del(key: string): Promise<void> {
    try {
      await this.redis.del(key);
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Tells every instance's fault cache (faults/cached-faults.ts) that the rules changed. */
  private async announce(): Promise<void> {
    try {
      await this.redis.publish(CHANGES_CHANNEL, '{"kind":"faults"}');
    } catch (err) {
      throw unavailable(err);
    }
  }

  async addFault(rule: FaultRule): Promise<void> {
    await this.run(
      'ckFaultAdd',
      this.k.rule + rule.id,
      this.k.order,
      this.k.seq,
      rule.id,
      JSON.stringify(rule),
      rule.remaining ?? '',
      rule.until ?? '',
    );
    await this.announce();
  }

  async listFaults(now: number): Promise<FaultRule[]> {
    const flat = (await this.run('ckFaultList', this.k.order, this.k.rule, now)) as string[];
    const out: FaultRule[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const remaining = flat[i + 1] ?? '';
      out.push({ ...(JSON.parse(flat[i] ?? '{}') as FaultRule), remaining: remaining === '' ? null : Number(remaining) });
    }
    return out;
  }

  async removeFault(id: string): Promise<{ ok: true } | { ok: false; reason: 'notFound' }> {
    if ((await this.run('ckFaultRemove', this.k.rule + id, this.k.order, id)) !== 1) return { ok: false, reason: 'notFound' };
    await this.announce();
    return { ok: true };
  }

  async clearFaults(): Promise<number> {
    const n = (await this.run('ckFaultClear', this.k.order, this.k.rule)) as number;
    await this.announce();
    return n;
  }

  async consumeFault(id: string, now: number): Promise<ConsumeResult> {
    const [ok, value] = (await this.run('ckFaultConsume', this.k.rule + id, now)) as [number, string];
    if (ok === 1) return { ok: true, remaining: value === '' ? null : Number(value) };
    return { ok: false, reason: value as 'notFound' | 'expired' | 'exhausted' };
  }

  async hitThrottle(key: string, now: number, windowMs: number, limit: number): Promise<ThrottleResult> {
    const start = now - (now % windowMs);
    const count = (await this.run('ckThrottleHit', this.k.throttle, key, start, limit)) as number;
    return count > 0 ? { ok: true, count } : { ok: false, reason: 'limited', retryAfterMs: start + windowMs - now };
  }

  async clearThrottle(): Promise<void> {
    await this.del(this.k.throttle);
  }

  /**
   * Appends arriving in one turn of the event loop (the responses of a burst of keepAlives) go
   * to Redis as one script call: one command for all of them, not one more per request beside
   * the keepAlive's own (docs/benchmarks.md). Each resolves once its entry is written.
   */
  appendRequest(entry: JournalEntry, keep: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.journalQueue.push({ entry: JSON.stringify(entry), keep, resolve, reject });
      if (this.journalQueue.length === 1) setImmediate(() => this.flushJournal());
    });
  }

  private flushJournal(): void {
    const queue = this.journalQueue;
    this.journalQueue = [];
    // One call per JOURNAL_BATCH entries that keep the same number (Lua's unpack has a limit).
    for (let at = 0; at < queue.length; ) {
      const keep = queue[at]?.keep ?? 0;
      let end = at + 1;
      while (end < queue.length && end - at < JOURNAL_BATCH && queue[end]?.keep === keep) end++;
      const batch = queue.slice(at, end);
      at = end;
      this.run('ckJournalAppend', this.k.journal, keep, ...batch.map((b) => b.entry)).then(
        () => {
          for (const b of batch) b.resolve();
        },
        (err: unknown) => {
          for (const b of batch) b.reject(err);
        },
      );
    }
  }

  async listRequests(q: JournalQuery): Promise<JournalEntry[]> {
    const rows = (await this.run('ckJournalList', this.k.journal, q.callId ?? '', q.appId ?? '', q.limit)) as string[];
    return rows.map((r) => JSON.parse(r) as JournalEntry);
  }

  async clearRequests(): Promise<void> {
    await this.del(this.k.journal);
  }

  /** Leaves the connection to its owner (it may be shared with the call store). */
  async close(): Promise<void> {}
}
