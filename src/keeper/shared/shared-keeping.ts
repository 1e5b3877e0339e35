import type { EndedEvent, RebalancedEvent, SharedErrorEvent } from '../keep-alive-events.js';
import type { CallState } from '../tracked-call.js';
import { assignBuckets, bucketOf, SharedKeys } from './keys.js';
import { type RedisLike, Script } from './run-script.js';
import { CLAIM_LUA } from './scripts/claim.lua.js';
import { END_LUA } from './scripts/end.lua.js';
import { RECORD_LUA } from './scripts/record.lua.js';
import { RELEASE_LUA } from './scripts/release.lua.js';
import { SYNC_LUA } from './scripts/sync.lua.js';
import { TRACK_LUA } from './scripts/track.lua.js';
import { UNTRACK_LUA } from './scripts/untrack.lua.js';

const SCRIPTS = {
  sync: new Script('sync', SYNC_LUA),
  claim: new Script('claim', CLAIM_LUA),
  release: new Script('release', RELEASE_LUA),
  track: new Script('track', TRACK_LUA),
  untrack: new Script('untrack', UNTRACK_LUA),
  record: new Script('record', RECORD_LUA),
  end: new Script('end', END_LUA),
};

/** Shared keeping on Redis: the `shared` option of `new KeepAlive(...)`. Durations are virtual ms. */
export interface SharedOptions {
  /** An ioredis client (Redis or Cluster). The keeper does not close it; it makes one duplicate for pub/sub. */
  redis: RedisLike;
  /** Replicas of one bot share a namespace; another bot (or test) uses another. Default "default". */
  namespace?: string;
  /** How long a lease lasts without renewal; a replica that stops renewing loses its calls after this. Default 60 s. */
  leaseTtl?: number;
  /** How often a replica renews its leases and looks at the live set. Default leaseTtl / 4. */
  syncInterval?: number;
  /** Calls are leased in this many buckets (by a hash of the call id). Default 1024. */
  buckets?: number;
}

/** What shared keeping stores for a call besides its last success. */
export interface SharedCallMeta {
  /** The replica that tracked it (its onEnded hook lives there). */
  t: string;
  /** Phase index: the call's slot in the interval, the same on every replica. */
  p: number;
  tn?: string;
  u?: string;
}

/** A call this replica now holds, handed to the local engine. */
export interface HeldCall {
  callId: string;
  bucket: number;
  fence: number;
  phaseIndex: number;
  lastSuccessAt: number;
  trackedBy: string;
  tenant?: string;
  baseUrl?: string;
}

/** What shared keeping needs of the keeper it coordinates. */
export interface SharedHost {
  readonly replicaId: string;
  now(): number;
  setTimer(at: number, fn: () => void): { cancel(): void };
  /** Start (or keep) sending for a call under this lease. */
  hold(call: HeldCall): void;
  /** Stop sending for a call, without events (handed over, lease lost, untracked elsewhere); settles when its request on the wire is handled. */
  drop(callId: string): Promise<void>;
  /** Another replica heard the call's 404 8522. */
  endedElsewhere(event: EndedEvent): void;
  sharedError(event: SharedErrorEvent): void;
  rebalanced(event: RebalancedEvent): void;
  /** An operation started (+1) or settled (-1): whenIdle() waits for them. */
  busy(delta: number): void;
}

interface HeldBucket {
  fence: number;
  /** Our lease expires at this moment at the latest (counted from the sync that renewed it). */
  until: number;
  version: string;
  calls: Set<string>;
}

interface Pending {
  callId: string;
  bucket: number;
  fence: number;
  sentAt: number;
}

/**
 * On the channel: a nudge (every replica syncs now: leases were given back, or a call came to a
 * bucket nobody holds), a bucket's calls changed (only its holder reads it again), a call ended.
 */
type ChannelMessage = { type: 'nudge' } | { type: 'changed'; bucket: number } | { type: 'ended'; event: EndedEvent; trackedBy: string };

/**
 * Shared keeping: replicas of one bot, pointed at one Redis, share the set of tracked calls.
 * Calls are grouped in buckets; each bucket has a lease (holder, fencing token, expiry) and the
 * holder alone sends its calls' keepAlives. Buckets are assigned by rendezvous hashing over the
 * live replicas (the set of heartbeats not expired), so every replica agrees where a bucket
 * belongs; a holder gives back buckets that belong elsewhere, and a replica claims those that
 * belong to it once free or lapsed. A replica sends only while its own view of the lease is
 * valid, and its writes are refused once the fence has moved on: a replica that lost a lease
 * never sends for it.
 */
export class SharedKeeping {
  private readonly keys: SharedKeys;
  private readonly ttl: number;
  private readonly syncEvery: number;
  private readonly buckets: number;
  /** Stop sending this long before our view of a lease expires: clock skew between replicas. */
  private readonly margin: number;
  private readonly held = new Map<number, HeldBucket>();
  private live: string[] = [];
  private sub: RedisLike | undefined;
  private timer: { cancel(): void } | undefined;
  private syncing: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private records: Pending[] = [];
  private recording: Promise<void> | undefined;

  constructor(
    private readonly redis: RedisLike,
    o: SharedOptions,
    private readonly host: SharedHost,
  ) {
    this.keys = new SharedKeys(o.namespace ?? 'default');
    this.ttl = o.leaseTtl ?? 60_000;
    this.syncEvery = o.syncInterval ?? this.ttl / 4;
    this.buckets = o.buckets ?? 1024;
    if (!(this.ttl > 0) || !(this.syncEvery > 0) || this.syncEvery >= this.ttl) {
      throw new RangeError('KeepAlive: shared.syncInterval must be positive and shorter than shared.leaseTtl');
    }
    if (!Number.isInteger(this.buckets) || this.buckets < 1) throw new RangeError('KeepAlive: shared.buckets must be a whole number >= 1');
    this.margin = Math.min(5_000, this.ttl / 10);
  }

  /** Subscribes to the channel and runs the first sync. */
  start(): void {
    this.op('subscribe', async () => {
      const sub = this.redis.duplicate();
      this.sub = sub;
      sub.on('error', () => undefined);
      sub.on('message', (_channel: string, text: string) => this.onMessage(text));
      await sub.subscribe(this.keys.channel);
    });
    this.syncSoon();
  }

  bucketOf(callId: string): number {
    return bucketOf(callId, this.buckets);
  }

  /** Whether this replica may send for a call now: it holds the bucket under that fence, and its lease is good. */
  maySend(bucket: number, fence: number): boolean {
    const b = this.held.get(bucket);
    return b !== undefined && b.fence === fence && this.host.now() < b.until - this.margin;
  }

  /** Whether this replica still holds the bucket under that fence (its view of the lease may be too old to send on). */
  holds(bucket: number, fence: number): boolean {
    return this.held.get(bucket)?.fence === fence;
  }

  /** How long a call held under a lease too old to send on waits before it looks again: the next sync renews or drops it. */
  get recheckMs(): number {
    return Math.min(this.syncEvery, this.margin);
  }

  /** Registers a call cluster-wide. */
  track(callId: string, lastSuccessAt: number, meta: Omit<SharedCallMeta, 'p'>): void {
    const bucket = this.bucketOf(callId);
    this.op('track', async () => {
      const [, phase, lease] = (await SCRIPTS.track.run(
        this.redis,
        [this.keys.calls(bucket), this.keys.last(bucket), this.keys.versions, this.keys.phase, this.keys.leases],
        [this.host.now(), callId, bucket, lastSuccessAt, JSON.stringify(meta)],
      )) as [number, number, string];
      const mine = this.held.get(bucket);
      if (mine && lease.startsWith(`${this.host.replicaId}|${mine.fence}|`)) {
        mine.calls.add(callId);
        this.host.hold({
          callId,
          bucket,
          fence: mine.fence,
          phaseIndex: Number(phase),
          lastSuccessAt,
          trackedBy: meta.t,
          ...optional(meta),
        });
      } else {
        // Its holder reads the bucket again; if nobody holds it, everyone syncs (its owner claims it).
        const exp = Number(lease.slice(lease.lastIndexOf('|') + 1));
        await this.publish(exp > this.host.now() ? { type: 'changed', bucket } : { type: 'nudge' });
      }
    });
  }

  /** Removes a call cluster-wide. */
  untrack(callId: string): void {
    const bucket = this.bucketOf(callId);
    this.held.get(bucket)?.calls.delete(callId);
    this.op('untrack', async () => {
      await SCRIPTS.untrack.run(this.redis, [this.keys.calls(bucket), this.keys.last(bucket), this.keys.versions], [callId, bucket]);
      await this.publish({ type: 'nudge' });
    });
  }

  /** A keepAlive succeeded: stored (batched) with the fence, for whoever holds the call next. */
  recordSent(callId: string, bucket: number, fence: number, sentAt: number): void {
    this.records.push({ callId, bucket, fence, sentAt });
    if (!this.recording) this.flushRecords();
  }

  private flushRecords(): void {
    if (this.records.length === 0) return;
    const batch = this.records;
    this.records = [];
    this.host.busy(1);
    this.recording = (async () => {
      try {
        const args: (string | number)[] = [this.host.now(), this.host.replicaId];
        const keys = [this.keys.leases];
        for (const r of batch) {
          args.push(r.callId, r.bucket, r.fence, r.sentAt);
          keys.push(this.keys.last(r.bucket));
        }
        const refused = new Set((await SCRIPTS.record.run(this.redis, keys, args)) as string[]);
        for (const r of batch) {
          if (!refused.has(r.callId)) continue;
          // A record made under an older lease of a bucket held again since (a stall, a lapse
          // and a re-claim) says nothing of the call as held now: dropping that would leave it
          // unsent while its bucket is still ours. Otherwise the call is gone from here.
          const h = this.held.get(r.bucket);
          if (h && h.fence !== r.fence) continue;
          h?.calls.delete(r.callId);
          void this.host.drop(r.callId);
        }
      } catch (err) {
        this.host.sharedError({ at: this.host.now(), operation: 'record', error: asError(err) });
      } finally {
        this.recording = undefined;
        this.host.busy(-1);
        if (this.records.length > 0) this.flushRecords();
      }
    })();
  }

  /** Waits until every recorded success is in Redis (before a lease is given back). */
  private async recordsFlushed(): Promise<void> {
    while (this.recording || this.records.length > 0) {
      if (!this.recording) this.flushRecords();
      await this.recording;
    }
  }

  /**
   * Graph said 404 8522: removes the call cluster-wide if this replica still holds it, and
   * tells the others. Resolves with the stored meta when it was ended here, undefined otherwise.
   */
  async end(callId: string, bucket: number, fence: number, event: EndedEvent): Promise<SharedCallMeta | undefined> {
    this.held.get(bucket)?.calls.delete(callId);
    this.host.busy(1);
    try {
      const [result, meta] = (await SCRIPTS.end.run(
        this.redis,
        [this.keys.leases, this.keys.calls(bucket), this.keys.last(bucket), this.keys.versions],
        [this.host.now(), this.host.replicaId, callId, bucket, fence],
      )) as [string, string | undefined];
      if (result !== 'ended' || meta === undefined) return undefined;
      const parsed = JSON.parse(meta) as SharedCallMeta;
      await this.publish({ type: 'ended', event, trackedBy: parsed.t });
      return parsed;
    } catch (err) {
      this.host.sharedError({ at: this.host.now(), operation: 'end', error: asError(err) });
      return undefined;
    } finally {
      this.host.busy(-1);
    }
  }

  /** Every call of the namespace, as stored, with its lease holder. */
  async calls(timeout: number): Promise<CallState[]> {
    const now = this.host.now();
    const leases = (await this.redis.hgetall(this.keys.leases)) as Record<string, string>;
    const pipe = this.redis.pipeline();
    for (let b = 0; b < this.buckets; b++) {
      pipe.hgetall(this.keys.calls(b));
      pipe.hgetall(this.keys.last(b));
    }
    const results = (await pipe.exec()) ?? [];
    const out: CallState[] = [];
    for (let b = 0; b < this.buckets; b++) {
      const metas = (results[2 * b]?.[1] ?? {}) as Record<string, string>;
      const lasts = (results[2 * b + 1]?.[1] ?? {}) as Record<string, string>;
      const lease = leases[String(b)]?.split('|');
      const holder = lease && Number(lease[2]) > now ? lease[0] : undefined;
      for (const [callId, text] of Object.entries(metas)) {
        const meta = JSON.parse(text) as SharedCallMeta;
        const last = Number(lasts[callId] ?? 0);
        out.push({
          callId,
          state: 'ok',
          lastSuccessAt: last,
          deadline: last + timeout,
          attempts: 0,
          leaseHolder: holder,
          trackedBy: meta.t,
          ...(meta.tn === undefined ? {} : { tenant: meta.tn }),
          ...(meta.u === undefined ? {} : { baseUrl: meta.u }),
        });
      }
    }
    return out;
  }

  /** Hands every held call over at once: records flushed, leases given back, live set left, others nudged. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.syncing?.catch(() => undefined);
    try {
      await this.recordsFlushed();
      const args: (string | number)[] = [this.host.replicaId, 'leave'];
      for (const [b, h] of this.held) args.push(b, h.fence);
      await SCRIPTS.release.run(this.redis, [this.keys.leases, this.keys.replicas], args);
      this.held.clear();
      await this.publish({ type: 'nudge' });
    } catch (err) {
      this.host.sharedError({ at: this.host.now(), operation: 'close', error: asError(err) });
    }
    const sub = this.sub;
    this.sub = undefined;
    if (sub) await Promise.resolve(sub.quit()).catch(() => sub.disconnect());
  }

  /** Held calls' count (leases), for stats. */
  get leases(): number {
    let n = 0;
    for (const b of this.held.values()) n += b.calls.size;
    return n;
  }

  get replicas(): number {
    return this.live.length;
  }

  private onMessage(text: string): void {
    if (this.closed) return;
    let msg: ChannelMessage;
    try {
      msg = JSON.parse(text) as ChannelMessage;
    } catch {
      return;
    }
    if (msg.type === 'nudge') this.syncSoon();
    else if (msg.type === 'changed') this.reloadSoon(msg.bucket);
    else if (msg.type === 'ended' && msg.event.endedBy !== this.host.replicaId) this.host.endedElsewhere(msg.event);
  }

  private async publish(msg: ChannelMessage): Promise<void> {
    await this.redis.publish(this.keys.channel, JSON.stringify(msg));
  }

  /** Runs an operation in the background; failures are reported, never thrown. */
  private op(name: string, fn: () => Promise<void>): void {
    this.host.busy(1);
    fn()
      .catch((err: unknown) => this.host.sharedError({ at: this.host.now(), operation: name, error: asError(err) }))
      .finally(() => this.host.busy(-1));
  }

  /** A sync as soon as possible (coalesced: one more after the running one, if asked during it). */
  private syncSoon(): void {
    if (this.closed) return;
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.timer?.cancel();
    this.timer = undefined;
    this.host.busy(1);
    this.syncing = this.sync()
      .catch((err: unknown) => this.host.sharedError({ at: this.host.now(), operation: 'sync', error: asError(err) }))
      .finally(() => {
        this.syncing = undefined;
        this.host.busy(-1);
        if (this.closed) return;
        if (this.again) {
          this.again = false;
          this.syncSoon();
        } else this.timer = this.host.setTimer(this.host.now() + this.syncEvery, () => this.syncSoon());
      });
  }

  private async sync(): Promise<void> {
    const me = this.host.replicaId;
    const now = this.host.now();
    const heldList = [...this.held.entries()];
    const held = heldList.map(([b, h]) => `${b}:${h.fence}:${h.version}`).join(',');
    const reply = (await SCRIPTS.sync.run(
      this.redis,
      [this.keys.replicas, this.keys.leases, this.keys.versions],
      [now, this.ttl, me, held],
    )) as string[];
    const bar1 = reply.indexOf('|');
    const bar2 = reply.indexOf('|', bar1 + 1);
    this.live = reply.slice(0, bar1);
    const lost = new Set(reply.slice(bar1 + 1, bar2).map(Number));
    let released = 0;
    let gained = 0;
    // Held buckets whose calls changed since we read them (a track, untrack or end): read again.
    const changed: number[] = [];
    for (let i = bar2 + 1; i + 1 < reply.length; i += 2) changed.push(Number(reply[i]));
    for (const [b, h] of heldList) {
      if (lost.has(b)) released += this.dropBucket(b);
      else h.until = now + this.ttl;
    }

    // Give back what belongs elsewhere now (after our successes are stored), take what is ours.
    const giveBack: [number, HeldBucket][] = [];
    const want: number[] = [];
    const owners = this.ownersFor(this.live);
    for (let b = 0; b < this.buckets; b++) {
      const owner = owners[b];
      const h = this.held.get(b);
      if (h && owner !== me) giveBack.push([b, h]);
      else if (!h && owner === me) want.push(b);
    }
    if (giveBack.length > 0) {
      const onWire: Promise<void>[] = [];
      for (const [b] of giveBack) released += this.dropBucket(b, onWire);
      await Promise.all(onWire);
      await this.recordsFlushed();
      const rel: (string | number)[] = [me, 'stay'];
      for (const [b, h] of giveBack) rel.push(b, h.fence);
      await SCRIPTS.release.run(this.redis, [this.keys.leases, this.keys.replicas], rel);
      await this.publish({ type: 'nudge' });
    }
    if (want.length > 0 && !this.closed) {
      const claimed = (await SCRIPTS.claim.run(
        this.redis,
        [this.keys.leases, this.keys.fence, this.keys.versions],
        [now, this.ttl, me, ...want],
      )) as string[];
      for (let i = 0; i < claimed.length; i += 3) {
        const b = Number(claimed[i]);
        this.held.set(b, { fence: Number(claimed[i + 1]), until: now + this.ttl, version: String(claimed[i + 2]), calls: new Set() });
        changed.push(b);
      }
    }
    for (const b of changed) gained += await this.load(b);
    if (gained > 0 || released > 0) {
      this.host.rebalanced({ at: this.host.now(), gained, released, held: this.leases, replicas: this.live.length });
    }
  }

  private readonly dirty = new Set<number>();
  private reloading = false;

  /**
   * A held bucket's calls changed (a call tracked on another replica): read it again, without a
   * whole sync. Coalesced: the buckets named while a read is running are read together after it.
   */
  private reloadSoon(bucket: number): void {
    if (!this.held.has(bucket)) return;
    this.dirty.add(bucket);
    if (this.reloading) return;
    this.reloading = true;
    this.op('load', async () => {
      try {
        while (this.dirty.size > 0 && !this.closed) {
          const buckets = [...this.dirty];
          this.dirty.clear();
          const gained = (await Promise.all(buckets.map((b) => this.load(b)))).reduce((a, b) => a + b, 0);
          if (gained > 0) this.host.rebalanced({ at: this.host.now(), gained, released: 0, held: this.leases, replicas: this.live.length });
        }
      } finally {
        this.reloading = false;
      }
    });
  }

  private ownersCache: { key: string; owners: (string | undefined)[] } | undefined;

  private ownersFor(live: string[]): (string | undefined)[] {
    // Sorted: the live set comes in heartbeat order, which changes from one sync to the next.
    const key = [...live].sort().join('\n');
    if (this.ownersCache?.key !== key) this.ownersCache = { key, owners: assignBuckets(this.buckets, live) };
    return this.ownersCache.owners;
  }

  private dropBucket(b: number, onWire?: Promise<void>[]): number {
    const h = this.held.get(b);
    if (!h) return 0;
    this.held.delete(b);
    for (const id of h.calls) {
      const settled = this.host.drop(id);
      onWire?.push(settled);
    }
    return h.calls.size;
  }

  /** Reads a held bucket's calls and hands the new ones to the engine (drops those gone). Returns how many were new. */
  private async load(b: number): Promise<number> {
    const res =
      (await this.redis.pipeline().hgetall(this.keys.calls(b)).hgetall(this.keys.last(b)).hget(this.keys.versions, String(b)).exec()) ?? [];
    const metas = res[0]?.[1];
    const lasts = res[1]?.[1];
    const version = res[2]?.[1];
    const h = this.held.get(b);
    if (!h || this.closed) return 0;
    h.version = String(version ?? '0');
    const m = (metas ?? {}) as Record<string, string>;
    const l = (lasts ?? {}) as Record<string, string>;
    for (const id of h.calls) {
      if (!(id in m)) {
        h.calls.delete(id);
        void this.host.drop(id);
      }
    }
    let gained = 0;
    for (const [callId, text] of Object.entries(m)) {
      if (h.calls.has(callId)) continue;
      const meta = JSON.parse(text) as SharedCallMeta;
      h.calls.add(callId);
      gained += 1;
      this.host.hold({
        callId,
        bucket: b,
        fence: h.fence,
        phaseIndex: meta.p,
        lastSuccessAt: Number(l[callId] ?? 0),
        trackedBy: meta.t,
        ...optional(meta),
      });
    }
    return gained;
  }
}

function optional(meta: Omit<SharedCallMeta, 'p'>): { tenant?: string; baseUrl?: string } {
  return { ...(meta.tn === undefined ? {} : { tenant: meta.tn }), ...(meta.u === undefined ? {} : { baseUrl: meta.u }) };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
