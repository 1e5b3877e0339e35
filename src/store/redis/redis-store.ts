import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { AppRegistration } from '../../auth/apps.js';
import type { CallNotification } from '../../calls/call-notifications.js';
import type { CallOwner, CallRecord, CallState, ResultInfo } from '../../calls/call-types.js';
import type { AddAppResult } from '../apps-port.js';
import type { Answer, ExpiryResults, ListPage, ListQuery, NewCall, NextDue } from '../calls-port.js';
import type { ClockState, StoreChange } from '../clock-port.js';
import {
  type CallSnapshot,
  DEFAULT_OUTBOX_BOUNDS,
  type DeliveryAttempt,
  type DeliveryOutcome,
  type DeliveryQuery,
  type FinishResult,
  type OutboxBounds,
  type OutboxEntry,
  type OutboxFact,
  type OutboxStats,
  type Transition,
} from '../outbox-port.js';
import { notFound, ok, type WriteResult, wrongState } from '../results.js';
import type { Store } from '../store.js';
import { DuplicateCallError, StoreUnavailableError } from '../store-errors.js';
import { loadScripts, SCRIPT_NAMES, type ScriptName } from './redis-scripts.js';
import { parseRedisUrl } from './redis-url.js';

export interface RedisStoreOptions {
  /** redis://host:port/db (one server) or redis-cluster://host:port,host:port (a cluster). */
  url: string;
  /** Shards ({ck:<n>} hash tags); every instance on one store must use the same. Default 8. */
  shards?: number;
  outboxBounds?: OutboxBounds;
  /** Names this instance as the holder of a shard's sweep. */
  instanceId?: string;
  /** How long a command may take before the store counts as unavailable (ms). */
  commandTimeoutMs?: number;
}

/** The change feed's channel (StoreChange as JSON); the control store announces fault changes here too. */
export const CHANGES_CHANNEL = 'ck:changes';
const CHANNEL = CHANGES_CHANNEL;
/** A shard's sweep stays claimed this long (wall ms) between the batches of one drain. */
const SWEEP_CLAIM_MS = 5_000;

type Flat = string[];

function fields(flat: Flat): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
  return out;
}

const num = (s: string | undefined): number | null => (s === undefined || s === '' ? null : Number(s));

function mergeResource(res: string, patch: string | undefined | null): Record<string, unknown> {
  const base = JSON.parse(res) as Record<string, unknown>;
  return patch ? { ...base, ...(JSON.parse(patch) as Record<string, unknown>) } : base;
}

function toRecord(flat: Flat): CallRecord {
  const f = fields(flat);
  const rc = num(f.rc);
  return {
    id: f.id ?? '',
    owner: { appId: f.app ?? '', tenantId: f.tenant ?? '' },
    state: f.state as CallState,
    direction: f.dir as 'incoming' | 'outgoing',
    createdAt: Number(f.created),
    lastKeepAliveAt: num(f.lka),
    deadline: num(f.deadline),
    establishAt: num(f.establish),
    endedAt: num(f.ended),
    resultInfo: rc === null ? null : { code: rc, subcode: num(f.rs) ?? 0, message: f.rm ?? '' },
    resource: mergeResource(f.res ?? '{}', f.patch),
  };
}

function toFact(f: Record<string, string>): OutboxFact {
  if (f.tr === 'notification') return { transition: 'notification', notification: JSON.parse(f.snap ?? '{}') as CallNotification };
  const snap = JSON.parse(f.snap ?? '{}') as CallSnapshot & { resourcePatch?: Record<string, unknown> | null };
  const { resourcePatch, ...snapshot } = snap;
  if (resourcePatch) snapshot.resource = { ...snapshot.resource, ...resourcePatch };
  return {
    transition: f.tr as Transition,
    result: f.result ? (JSON.parse(f.result) as ResultInfo) : null,
    snapshot,
  };
}

function toEntry(flat: Flat): OutboxEntry {
  const f = fields(flat);
  return {
    seq: Number(f.seq),
    callId: f.call ?? '',
    owner: { appId: f.app ?? '', tenantId: f.tenant ?? '' },
    callbackUri: f.cb ?? '',
    fact: toFact(f),
    createdAt: Number(f.created),
    status: f.status as OutboxEntry['status'],
    attempts: Number(f.attempts ?? 0),
    nextAttemptAt: num(f.next) ?? Number(f.created),
    lastStatusCode: num(f.laststatus),
    lastError: f.lasterror ? f.lasterror : null,
    deliveredAt: num(f.delivered),
    lease: Number(f.lease ?? 0),
    deadReason: f.dead === 'overflow' ? 'overflow' : null,
  };
}

function toClock(v: string[]): ClockState {
  const [wallOrigin, virtualOrigin, scale, offset, floor, version] = v.map(Number) as [number, number, number, number, number, number];
  return { wallOrigin, virtualOrigin, scale, offset, floor, version };
}

/** FNV-1a: which shard a call id lives in (stable across instances and versions). */
export function shardOf(id: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % shards;
}

/** How long opening a store waits for its connections to be ready (wall ms). */
const OPEN_TIMEOUT_MS = 20_000;

/**
 * Connects and waits for 'ready'. ioredis's own connect() promise is not enough on a Cluster:
 * when its ready check meets a node still saying cluster_state:fail, it reconnects and that first
 * promise never settles (redis/ioredis#709), though the client becomes ready later.
 */
function ready(c: Client): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready within ${OPEN_TIMEOUT_MS / 1000} s`)), OPEN_TIMEOUT_MS);
    c.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
    c.connect().catch((err: unknown) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Replies that mean "Redis cannot serve now", as opposed to a bug in a script. */
const UNAVAILABLE_REPLY = /^(CLUSTERDOWN|LOADING|READONLY|TRYAGAIN|MASTERDOWN|BUSY|NOREPLICAS|MISCONF|OOM)/;

/** What a failed Redis command becomes: StoreUnavailableError (a 503) unless Redis refused the script itself (a bug). */
export function unavailable(err: unknown): Error {
  const e = err as { name?: string; message?: string };
  if (e.name === 'ReplyError' && !UNAVAILABLE_REPLY.test(e.message ?? '')) return err as Error;
  return new StoreUnavailableError(`the Redis store failed: ${e.message ?? String(err)}`, err);
}

type Client = Redis | Cluster;

/** See RedisStore.shared. */
export interface RedisShared {
  readonly shards: number;
  shardOf(id: string): number;
  /** A shard's key prefix, `{ck:<n>}` (its hash tag). */
  prefix(shard: number): string;
  script(name: ScriptName, shard: number, ...args: (string | number)[]): Promise<unknown>;
  /** Plain commands, with the store's error mapping (StoreUnavailableError). */
  command<T>(run: (c: Redis | Cluster) => Promise<T>): Promise<T>;
}
type ScriptFn = (key: string, ...args: (string | number)[]) => Promise<unknown>;

/**
 * The shared store: several callkeeper instances on one Redis (or Redis Cluster) form one
 * callkeeper. Every write is one Lua script (src/store/redis/lua/, one per operation) run
 * atomically on one shard; a call, its deadline entries and its outbox line share a shard
 * ({ck:<n>} hash tag, so they share a cluster slot). Time is passed into every script.
 * Settings, apps and the clock live in shard 0; changes are published on `ck:changes`.
 */
export class RedisStore implements Store {
  readonly kind = 'redis';
  readonly location: string;
  private readonly shards: number;
  private readonly bounds: OutboxBounds;
  private readonly instanceId: string;
  private readonly feed = new EventEmitter();
  /** The newest clock state this handle has seen (its own steps, reads, the change feed). */
  private lastClock: ClockState | undefined;
  private closed = false;

  private constructor(
    private readonly client: Client,
    private readonly subscriber: Client,
    options: RedisStoreOptions,
  ) {
    this.shards = options.shards ?? 8;
    this.bounds = options.outboxBounds ?? DEFAULT_OUTBOX_BOUNDS;
    this.instanceId = options.instanceId ?? randomUUID();
    this.feed.setMaxListeners(0);
    this.location = parseRedisUrl(options.url).display;
  }

  /** Connects (to a server or a cluster), loads the scripts, subscribes to the change feed. */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const shards = options.shards ?? 8;
    if (!Number.isInteger(shards) || shards < 1 || shards > 1024) throw new RangeError(`shards must be 1 to 1024, got ${shards}`);
    const target = parseRedisUrl(options.url);
    const common: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs ?? 5_000,
      connectTimeout: 5_000,
      retryStrategy: (times) => Math.min(times * 100, 1_000),
      // The commands of one turn of the event loop (a burst of keepAlives, the journal's
      // appends) go to Redis in one write, read by it in one (measured: docs/benchmarks.md).
      enableAutoPipelining: true,
      ...(target.password ? { password: target.password } : {}),
      ...(target.username ? { username: target.username } : {}),
    };
    let client: Client;
    let subscriber: Client;
    if (target.cluster) {
      const opts = {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        redisOptions: common,
        clusterRetryStrategy: () => 200,
      };
      client = new Cluster(target.nodes, opts);
      subscriber = new Cluster(target.nodes, opts);
    } else {
      const base = { ...common, ...(target.nodes[0] as { host: string; port: number }), db: target.db };
      client = new Redis(base);
      subscriber = new Redis(base);
    }
    // ioredis reports connection trouble as events; the operations reject on their own.
    client.on('error', () => undefined);
    subscriber.on('error', () => undefined);
    try {
      await Promise.all([ready(client), ready(subscriber)]);
    } catch (err) {
      client.disconnect();
      subscriber.disconnect();
      throw new StoreUnavailableError(`cannot reach Redis at ${target.display}: ${(err as Error).message}`, err);
    }
    const scripts = loadScripts();
    for (const name of SCRIPT_NAMES) client.defineCommand(`ck_${name.replace('-', '_')}`, { numberOfKeys: 1, lua: scripts[name] });
    const store = new RedisStore(client, subscriber, { ...options, shards });
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== CHANNEL) return;
      try {
        const change = JSON.parse(message) as StoreChange;
        if (change.kind === 'clock' && change.state.version > (store.lastClock?.version ?? -1)) store.lastClock = change.state;
        store.feed.emit('change', change);
      } catch {
        // Not ours.
      }
    });
    await subscriber.subscribe(CHANNEL);
    return store;
  }

  private meta(shard: number): string {
    return `{ck:${shard}}:meta`;
  }

  private async script(name: ScriptName, shard: number, ...args: (string | number)[]): Promise<unknown> {
    if (this.closed) throw new StoreUnavailableError('the Redis store is closed');
    const fn = (this.client as unknown as Record<string, ScriptFn>)[`ck_${name.replace('-', '_')}`] as ScriptFn;
    try {
      return await fn.call(
        this.client,
        this.meta(shard),
        this.shards,
        shard,
        this.bounds.perCall,
        Math.ceil(this.bounds.total / this.shards),
        ...args,
      );
    } catch (err) {
      throw unavailable(err);
    }
  }

  private async cmd<T>(run: (c: Client) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('the Redis store is closed');
    try {
      return await run(this.client);
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * What RedisBotActionStore (redis-bot-action-store.ts) shares with this store: the connection,
   * the shard layout and the scripts, so a call's bot-action state and the facts it queues live in
   * the call's own shard and commit with the call's outbox line in one script.
   */
  get shared(): RedisShared {
    return {
      shards: this.shards,
      shardOf: (id) => shardOf(id, this.shards),
      prefix: (shard) => `{ck:${shard}}`,
      script: (name, shard, ...args) => this.script(name, shard, ...args),
      command: (run) => this.cmd(run),
    };
  }

  private allShards(): number[] {
    return Array.from({ length: this.shards }, (_, i) => i);
  }

  async create(call: NewCall): Promise<void> {
    const rid = await this.cmd((c) => c.incr('{ck:0}:rid'));
    const callbackUri = typeof call.resource.callbackUri === 'string' ? call.resource.callbackUri : '';
    const stored = await this.script(
      'create',
      shardOf(call.id, this.shards),
      call.id,
      call.owner.appId,
      call.owner.tenantId,
      call.state,
      call.direction,
      call.createdAt,
      call.deadline,
      call.establishAt ?? '',
      JSON.stringify(call.resource),
      rid,
      callbackUri,
    );
    if (stored === 0) throw new DuplicateCallError(call.id);
  }

  async findLive(id: string, owner: CallOwner, now: number): Promise<CallRecord | undefined> {
    const call = await this.get(id);
    if (!call || call.owner.appId !== owner.appId || call.owner.tenantId !== owner.tenantId) return undefined;
    return call.deadline !== null && call.deadline > now ? call : undefined;
  }

  async get(id: string): Promise<CallRecord | undefined> {
    const key = `{ck:${shardOf(id, this.shards)}}:call:${id}`;
    const h = await this.cmd((c) => c.hgetall(key));
    if (!h.id) return undefined;
    return toRecord(Object.entries(h).flat());
  }

  async keepAlive(id: string, owner: CallOwner, now: number, deadline: number): Promise<WriteResult<undefined>> {
    const r = await this.script('keepalive', shardOf(id, this.shards), id, owner.appId, owner.tenantId, now, deadline);
    return r === 1 ? ok(undefined) : notFound;
  }

  private tagged(r: unknown): WriteResult<CallRecord> {
    const [code, value] = r as [number, Flat | string];
    if (code === 1) return ok(toRecord(value as Flat));
    if (code === 2) return wrongState(value as CallState);
    return notFound;
  }

  async end(id: string, owner: CallOwner | null, now: number, result: ResultInfo, onlyState?: CallState): Promise<WriteResult<CallRecord>> {
    return this.tagged(
      await this.script(
        'end',
        shardOf(id, this.shards),
        id,
        owner?.appId ?? '',
        owner?.tenantId ?? '',
        now,
        result.code,
        result.subcode,
        result.message,
        onlyState ?? '',
      ),
    );
  }

  async answer(id: string, owner: CallOwner, now: number, answer: Answer): Promise<WriteResult<CallRecord>> {
    return this.tagged(
      await this.script(
        'answer',
        shardOf(id, this.shards),
        id,
        owner.appId,
        owner.tenantId,
        now,
        answer.deadline,
        answer.establishAt,
        JSON.stringify(answer.resource),
      ),
    );
  }

  async expireDue(now: number, limit: number, results: ExpiryResults): Promise<CallRecord[]> {
    const { keepAlive: k, unanswered: u } = results;
    const out: CallRecord[] = [];
    for (const shard of this.allShards()) {
      if (out.length >= limit) break;
      const r = await this.script(
        'expire',
        shard,
        now,
        limit - out.length,
        k.code,
        k.subcode,
        k.message,
        u.code,
        u.subcode,
        u.message,
        this.instanceId,
        SWEEP_CLAIM_MS,
      );
      if (r === -1) continue;
      out.push(...(r as Flat[]).map(toRecord));
    }
    return out.sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0));
  }

  async establishDue(now: number, limit: number): Promise<CallRecord[]> {
    const out: CallRecord[] = [];
    for (const shard of this.allShards()) {
      if (out.length >= limit) break;
      const r = (await this.script('establish', shard, now, limit - out.length)) as Flat[];
      out.push(...r.map(toRecord));
    }
    return out;
  }

  private async minScore(set: string): Promise<number | undefined> {
    const firsts = await this.cmd((c) =>
      Promise.all(this.allShards().map((s) => c.zrange(`{ck:${s}}:${set}`, 0, 0, 'WITHSCORES') as Promise<string[]>)),
    );
    const scores = firsts.filter((f) => f.length === 2).map((f) => Number(f[1]));
    return scores.length ? Math.min(...scores) : undefined;
  }

  async nextDue(): Promise<NextDue> {
    const [deadline, establishAt, oldestEndedAt] = await Promise.all([
      this.minScore('deadlines'),
      this.minScore('establish'),
      this.minScore('ended'),
    ]);
    const out: NextDue = {};
    if (deadline !== undefined) out.deadline = deadline;
    if (establishAt !== undefined) out.establishAt = establishAt;
    if (oldestEndedAt !== undefined) out.oldestEndedAt = oldestEndedAt;
    return out;
  }

  async purgeEnded(before: number, limit: number): Promise<number> {
    let purged = 0;
    for (const shard of this.allShards()) {
      if (purged >= limit) break;
      purged += Number(await this.script('purge', shard, before, limit - purged));
    }
    return purged;
  }

  async list(q: ListQuery): Promise<ListPage> {
    // Creation order across shards: every call has a global rid (the {ck:0}:rid counter).
    const after = q.after === undefined ? 0 : Number.parseInt(q.after, 36) || 0;
    const page: CallRecord[] = [];
    let from = after;
    let more = false;
    for (;;) {
      const batch = await this.cmd((c) =>
        Promise.all(
          this.allShards().map(
            (s) => c.zrangebyscore(`{ck:${s}}:calls`, `(${from}`, '+inf', 'WITHSCORES', 'LIMIT', 0, q.limit + 1) as Promise<string[]>,
          ),
        ),
      );
      const rows: { id: string; rid: number }[] = [];
      for (const b of batch) for (let i = 0; i + 1 < b.length; i += 2) rows.push({ id: b[i] as string, rid: Number(b[i + 1]) });
      rows.sort((a, b) => a.rid - b.rid);
      if (rows.length === 0) break;
      const window = rows.slice(0, q.limit + 1);
      for (const row of window) {
        from = row.rid;
        const call = await this.get(row.id);
        if (!call) continue;
        if (q.state === 'active' && call.deadline === null) continue;
        if (q.state === 'ended' && call.endedAt === null) continue;
        if (q.appId && call.owner.appId !== q.appId) continue;
        if (page.length === q.limit) {
          more = true;
          break;
        }
        page.push(call);
      }
      if (more || rows.length <= q.limit) break;
    }
    const out: ListPage = { calls: page };
    if (more && page.length) {
      const last = page[page.length - 1] as CallRecord;
      const rid = await this.cmd((c) => c.zscore(`{ck:${shardOf(last.id, this.shards)}}:calls`, last.id));
      out.next = Number(rid).toString(36);
    }
    return out;
  }

  async counts(): Promise<{ active: number; ended: number }> {
    const [a, e] = await this.cmd((c) =>
      Promise.all([
        Promise.all(this.allShards().map((s) => c.zcard(`{ck:${s}}:deadlines`))),
        Promise.all(this.allShards().map((s) => c.zcard(`{ck:${s}}:ended`))),
      ]),
    );
    return { active: a.reduce((x, y) => x + y, 0), ended: e.reduce((x, y) => x + y, 0) };
  }

  async claimDeliveries(now: number, limit: number, leaseUntil: number): Promise<OutboxEntry[]> {
    const out: OutboxEntry[] = [];
    // Start at a different shard each time, so no shard's entries always wait behind the others'.
    const start = Math.floor(Math.random() * this.shards);
    for (let i = 0; i < this.shards && out.length < limit; i++) {
      const r = (await this.script('claim', (start + i) % this.shards, now, limit - out.length, leaseUntil)) as Flat[];
      out.push(...r.map(toEntry));
    }
    return out;
  }

  async finishDelivery(seq: number, lease: number, attempt: DeliveryAttempt, outcome: DeliveryOutcome): Promise<FinishResult> {
    const r = await this.script(
      'finish',
      seq % this.shards,
      seq,
      lease,
      outcome.status,
      outcome.status === 'pending' ? outcome.nextAttemptAt : '',
      attempt.statusCode ?? '',
      attempt.error ?? '',
      attempt.at,
      JSON.stringify(attempt),
    );
    if (r === 1) return { ok: true };
    return { ok: false, reason: r === 0 ? 'notFound' : 'staleLease' };
  }

  async nextDeliveryAt(): Promise<number | undefined> {
    return this.minScore('due');
  }

  async outboxStats(): Promise<OutboxStats> {
    const metas = await this.cmd((c) => Promise.all(this.allShards().map((s) => c.hmget(this.meta(s), 'pending', 'overflowed'))));
    let pending = 0;
    let overflowed = 0;
    for (const [p, o] of metas) {
      pending += Number(p ?? 0);
      overflowed += Number(o ?? 0);
    }
    return { pending, overflowed };
  }

  async listDeliveries(q: DeliveryQuery): Promise<(OutboxEntry & { attemptLog: DeliveryAttempt[] })[]> {
    let seqs: { shard: number; seq: string }[];
    if (q.callId) {
      const shard = shardOf(q.callId, this.shards);
      const all = await this.cmd((c) => c.lrange(`{ck:${shard}}:obcall:${q.callId}`, 0, -1));
      seqs = all.reverse().map((seq) => ({ shard, seq }));
    } else {
      const set = q.status === 'dead' ? 'obdead' : 'oball';
      const per = await this.cmd((c) =>
        Promise.all(this.allShards().map((s) => c.zrevrange(`{ck:${s}}:${set}`, 0, q.status && q.status !== 'dead' ? -1 : q.limit - 1))),
      );
      seqs = per.flatMap((list, shard) => list.map((seq) => ({ shard, seq }))).sort((a, b) => Number(b.seq) - Number(a.seq));
    }
    const out: (OutboxEntry & { attemptLog: DeliveryAttempt[] })[] = [];
    for (const { shard, seq } of seqs) {
      if (out.length >= q.limit) break;
      const [h, attempts] = await this.cmd((c) =>
        Promise.all([c.hgetall(`{ck:${shard}}:ob:${seq}`), c.lrange(`{ck:${shard}}:attempts:${seq}`, 0, -1)]),
      );
      if (!h.seq) continue;
      const entry = toEntry(Object.entries(h).flat());
      if (q.status && entry.status !== q.status) continue;
      out.push({ ...entry, attemptLog: attempts.map((a) => JSON.parse(a) as DeliveryAttempt) });
    }
    return out;
  }

  async outboxDepth(): Promise<number> {
    return (await this.outboxStats()).pending;
  }

  /** Deletes every call and outbox key of every shard (the control API's reset); settings, apps and the clock stay. */
  async resetCalls(): Promise<void> {
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    for (const node of nodes) {
      for (const shard of this.allShards()) {
        const keys = await this.cmd(() => node.keys(`{ck:${shard}}:*`));
        const drop = keys.filter(
          (k) =>
            !k.endsWith(':settings') && !k.endsWith(':apps') && !k.endsWith(':apporder') && !k.endsWith(':clock') && !k.endsWith(':rid'),
        );
        // One shard's keys share one slot: a DEL of them is never CROSSSLOT.
        for (let i = 0; i < drop.length; i += 500) await this.cmd(() => node.del(...drop.slice(i, i + 500)));
      }
    }
    // Through the client, not a node: on a Cluster only the shard's own master takes the write.
    for (const shard of this.allShards()) await this.cmd((c) => c.hset(this.meta(shard), 'pending', 0));
  }

  async clearApps(): Promise<string[]> {
    const ids = await this.cmd((c) => c.lrange('{ck:0}:apporder', 0, -1));
    await this.cmd((c) => c.del('{ck:0}:apps', '{ck:0}:apporder'));
    await this.publish({ kind: 'apps' });
    return ids;
  }

  async getOrInitSetting(key: string, value: string): Promise<string> {
    return this.cmd(async (c) => {
      await c.hsetnx('{ck:0}:settings', key, value);
      return (await c.hget('{ck:0}:settings', key)) as string;
    });
  }

  async getSetting(key: string): Promise<string | undefined> {
    return (await this.cmd((c) => c.hget('{ck:0}:settings', key))) ?? undefined;
  }

  async putSetting(key: string, value: string): Promise<void> {
    await this.cmd((c) => c.hset('{ck:0}:settings', key, value));
  }

  async addApp(app: AppRegistration, maxApps: number): Promise<AddAppResult> {
    const r = await this.script('add-app', 0, app.clientId.toLowerCase(), JSON.stringify(app), maxApps);
    if (r === 0) return { ok: false, reason: 'exists' };
    if (r === -1) return { ok: false, reason: 'limit' };
    await this.publish({ kind: 'apps' });
    return { ok: true };
  }

  async findApp(clientId: string): Promise<AppRegistration | undefined> {
    const text = await this.cmd((c) => c.hget('{ck:0}:apps', clientId.toLowerCase()));
    return text ? (JSON.parse(text) as AppRegistration) : undefined;
  }

  async listApps(): Promise<AppRegistration[]> {
    const [order, all] = await this.cmd((c) => Promise.all([c.lrange('{ck:0}:apporder', 0, -1), c.hgetall('{ck:0}:apps')]));
    return order.filter((id) => all[id]).map((id) => JSON.parse(all[id] as string) as AppRegistration);
  }

  async initClock(proposed: ClockState, wallNow: number): Promise<ClockState> {
    const r = (await this.script(
      'clock-init',
      0,
      proposed.wallOrigin,
      proposed.virtualOrigin,
      proposed.scale,
      proposed.offset,
      proposed.floor,
      proposed.version,
      wallNow,
    )) as string[];
    const state = toClock(r);
    this.lastClock = state;
    await this.publish({ kind: 'clock', state });
    return state;
  }

  async advanceClock(ms: number, wallNow: number): Promise<ClockState> {
    let r = await this.script('clock-advance', 0, ms, wallNow);
    if (r === 0 && this.lastClock) {
      // Redis lost the clock (a FLUSHALL, a restart without persistence): put back the latest
      // state this handle saw, so time goes on from there instead of failing (or going back).
      await this.initClock(this.lastClock, wallNow);
      r = await this.script('clock-advance', 0, ms, wallNow);
    }
    if (r === 0) throw new Error('the clock was never initialised (initClock)');
    const state = toClock(r as string[]);
    this.lastClock = state;
    await this.publish({ kind: 'clock', state });
    return state;
  }

  async readClock(): Promise<ClockState | undefined> {
    const v = await this.cmd((c) => c.hmget('{ck:0}:clock', 'wo', 'vo', 'scale', 'offset', 'floor', 'version'));
    if (v[0] === null) return undefined;
    this.lastClock = toClock(v as string[]);
    return this.lastClock;
  }

  watch(listener: (change: StoreChange) => void): () => void {
    this.feed.on('change', listener);
    return () => this.feed.off('change', listener);
  }

  private async publish(change: StoreChange): Promise<void> {
    // This handle's own watchers at once; the others through Redis (and their polls, as a backstop).
    this.feed.emit('change', change);
    await this.cmd((c) => c.publish(CHANNEL, JSON.stringify(change)));
  }

  /**
   * Redis's own persistence settings, for the start-up check (docs/decisions.md, "Durability on
   * Redis"). On a cluster, the weakest master's: a change is only as safe as the node it lives on.
   */
  async persistence(): Promise<{ aof: boolean; fsync: string; rdb: boolean }> {
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    const each = await this.cmd(() =>
      Promise.all(
        nodes.map(async (n) => {
          const [aof, fsync, save] = await Promise.all([
            n.config('GET', 'appendonly') as Promise<string[]>,
            n.config('GET', 'appendfsync') as Promise<string[]>,
            n.config('GET', 'save') as Promise<string[]>,
          ]);
          return { aof: aof[1] === 'yes', fsync: fsync[1] ?? '', rdb: (save[1] ?? '') !== '' };
        }),
      ),
    );
    const strength = ['no', 'everysec', 'always'];
    const weakest = each.reduce((w, e) => (strength.indexOf(e.fsync) < strength.indexOf(w) ? e.fsync : w), 'always');
    return { aof: each.every((e) => e.aof), fsync: weakest, rdb: each.every((e) => e.rdb) };
  }

  /**
   * The command connection, for the stores kept beside this one (control, bot actions) so that
   * one instance holds one connection pair. They must leave it open: close() here closes it.
   */
  get connection(): Redis | Cluster {
    return this.client;
  }

  /** Deletes every callkeeper key (tests and benches only). */
  async flushForTests(): Promise<void> {
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    await Promise.all(nodes.map((n) => n.flushdb()));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.feed.removeAllListeners();
    for (const c of [this.subscriber, this.client]) {
      if (c.status === 'ready') await c.quit().catch(() => c.disconnect());
      else c.disconnect();
    }
  }
}
