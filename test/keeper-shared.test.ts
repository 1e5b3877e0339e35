/**
 * Shared keeping on a real redis-server: the Lua scripts' contract with interleaved handles,
 * then replicas (KeepAlive instances, each with its own Redis connection and its own proxy in
 * front of one callkeeper server) on one ManualClock: one sender per call, spread, handover on
 * close() and on join, takeover of a lapsed lease with fencing, and untrack and ends cluster-wide.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { KeepAlive } from '../src/keeper/keep-alive.js';
import type { EndedEvent } from '../src/keeper/keep-alive-events.js';
import { SharedKeys } from '../src/keeper/shared/keys.js';
import { Script } from '../src/keeper/shared/run-script.js';
import { CLAIM_LUA } from '../src/keeper/shared/scripts/claim.lua.js';
import { END_LUA } from '../src/keeper/shared/scripts/end.lua.js';
import { RECORD_LUA } from '../src/keeper/shared/scripts/record.lua.js';
import { SYNC_LUA } from '../src/keeper/shared/scripts/sync.lua.js';
import { TRACK_LUA } from '../src/keeper/shared/scripts/track.lua.js';
import { FaultProxy, inWorker, MINUTE, type Rig, startRig, workerTask } from './keeper-harness.test.js';
import { type RedisServer, startRedis, startRedisCluster } from './redis-server.js';

const INTERVAL = 15 * MINUTE;
const TTL = 60_000;

// Each test runs in a worker thread of its own (keeper-harness.test.ts, inWorker), with its own
// server, clock and redis-server, all of them at once: they share nothing.
let rig: Rig;
let redis: RedisServer;
const clients: Redis[] = [];
async function setUp(): Promise<void> {
  rig = await startRig();
  redis = await startRedis();
}
// Replicas a test did not get to close (it failed half-way) are closed here, so a failure is
// reported instead of open proxies keeping the worker alive forever.
const replicas: Replica[] = [];
async function tearDown(): Promise<void> {
  const bounded = (p: Promise<unknown>) =>
    Promise.race([p.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
  for (const r of replicas) {
    await bounded(r.k.close());
    await bounded(r.proxy.close());
  }
  for (const c of clients) c.disconnect();
  await rig.close();
  await redis.stop();
}

/** The tests, registered by title; each runs in a worker (see the bottom of this file). */
const specs: [string, () => Promise<void>][] = [];
function spec(title: string, fn: () => Promise<void>): void {
  specs.push([title, fn]);
}

function client(): Redis {
  const c = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  clients.push(c);
  return c;
}

spec('scripts: two handles race for a bucket; the loser is fenced out of record and end once the lease moves', async () => {
  const a = client();
  const b = client();
  const k = new SharedKeys('contract');
  const claim = new Script('claim', CLAIM_LUA);
  const sync = new Script('sync', SYNC_LUA);
  const record = new Script('record', RECORD_LUA);
  const end = new Script('end', END_LUA);
  const track = new Script('track', TRACK_LUA);
  const now = 1_000_000;
  const claimKeys = [k.leases, k.fence, k.versions];
  // Both ask for bucket 7 at once: exactly one gets it.
  const [ra, rb] = (await Promise.all([claim.run(a, claimKeys, [now, TTL, 'A', 7]), claim.run(b, claimKeys, [now, TTL, 'B', 7])])) as [
    string[],
    string[],
  ];
  assert.equal(ra.length + rb.length, 3, 'one winner');
  const [winner, loser, winnerHandle, loserHandle] = ra.length > 0 ? ['A', 'B', a, b] : ['B', 'A', b, a];
  const fence1 = Number((ra.length > 0 ? ra : rb)[1]);
  await track.run(
    winnerHandle,
    [k.calls(7), k.last(7), k.versions, k.phase, k.leases],
    [now, 'call-1', 7, now, JSON.stringify({ t: winner })],
  );
  // The lease is live: the loser cannot take it, and cannot write under it.
  assert.deepEqual(await claim.run(loserHandle, claimKeys, [now + TTL - 1, TTL, loser, 7]), []);
  assert.deepEqual(await record.run(loserHandle, [k.leases, k.last(7)], [now + 1, loser, 'call-1', 7, fence1, now + 1]), ['call-1']);
  assert.deepEqual(await record.run(winnerHandle, [k.leases, k.last(7)], [now + 2, winner, 'call-1', 7, fence1, now + 2]), []);
  assert.equal(await a.hget(k.last(7), 'call-1'), String(now + 2));
  // The winner's sync renews the lease, and says the bucket changed since its claim (version 0: the track came after).
  const renewed = (await sync.run(winnerHandle, [k.replicas, k.leases, k.versions], [now + 3, TTL, winner, `7:${fence1}:0`])) as string[];
  assert.deepEqual(renewed.slice(renewed.indexOf('|') + 1), ['|', '7', '1'], 'kept; bucket 7 now at version 1');
  assert.equal(await a.hget(k.leases, '7'), `${winner}|${fence1}|${now + 3 + TTL}`, 'renewed from the sync');
  const same = (await sync.run(winnerHandle, [k.replicas, k.leases, k.versions], [now + 4, TTL, winner, `7:${fence1}:1`])) as string[];
  assert.deepEqual(same.slice(same.indexOf('|') + 1), ['|'], 'kept, unchanged');
  // The winner stops renewing; at the expiry the loser takes over with a higher fence.
  const taken = (await claim.run(loserHandle, claimKeys, [now + 4 + TTL, TTL, loser, 7])) as string[];
  assert.equal(taken[0], '7');
  const fence2 = Number(taken[1]);
  assert.ok(fence2 > fence1);
  // The old holder is fenced everywhere: its sync reports the loss, its record and end are refused.
  const reply = (await sync.run(
    winnerHandle,
    [k.replicas, k.leases, k.versions],
    [now + TTL + 5, TTL, winner, `7:${fence1}:1`],
  )) as string[];
  assert.deepEqual(reply.slice(reply.indexOf('|') + 1, reply.lastIndexOf('|')), ['7'], 'lost');
  assert.deepEqual(await record.run(winnerHandle, [k.leases, k.last(7)], [now + TTL + 2, winner, 'call-1', 7, fence1, now + TTL + 2]), [
    'call-1',
  ]);
  assert.deepEqual(
    await end.run(winnerHandle, [k.leases, k.calls(7), k.last(7), k.versions], [now + TTL + 2, winner, 'call-1', 7, fence1]),
    ['fenced'],
  );
  assert.equal(await a.hget(k.last(7), 'call-1'), String(now + 2), 'the last success the new holder reads is the real one');
  const ended = (await end.run(
    loserHandle,
    [k.leases, k.calls(7), k.last(7), k.versions],
    [now + TTL + 3, loser, 'call-1', 7, fence2],
  )) as string[];
  assert.equal(ended[0], 'ended');
  assert.equal(JSON.parse(ended[1] as string).t, winner, 'the meta names who tracked it');
});

interface Replica {
  name: string;
  k: KeepAlive;
  proxy: FaultProxy;
  redis: Redis | Cluster;
  ended: EndedEvent[];
  hooks: string[];
}

async function replica(name: string, namespace: string, redisClient?: Redis | Cluster): Promise<Replica> {
  const proxy = await FaultProxy.start(rig.base, rig.clock);
  const r = redisClient ?? client();
  const k = new KeepAlive({
    baseUrl: `${proxy.url}/v1.0`,
    credential: rig.credential(),
    clock: rig.clock,
    replicaId: name,
    shared: { redis: r, namespace, leaseTtl: TTL },
  });
  const rep: Replica = { name, k, proxy, redis: r, ended: [], hooks: [] };
  replicas.push(rep);
  k.on('ended', (e) => rep.ended.push(e));
  if (process.env.SHARED_DEBUG) {
    k.on('rebalanced', (e) => console.log(name, 'rebalanced', JSON.stringify(e)));
    k.on('sharedError', (e) => console.log(name, 'sharedError', e.operation, e.error.message));
  }
  return rep;
}

/** Advances virtual time in steps, letting every replica and the server settle after each. */
async function run(replicas: Replica[], totalMs: number, stepMs = 5000): Promise<void> {
  for (let t = 0; t < totalMs; t += stepMs) {
    rig.clock.advance(Math.min(stepMs, totalMs - t));
    // Pub/sub messages (nudges) arrive a little after the command that sent them: settle twice.
    for (let i = 0; i < 2; i++) {
      await Promise.all(replicas.map((r) => r.k.whenIdle()));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await rig.ck.scheduler.idle();
  }
}

/** Waits (real time, generous) until `ok()` holds, letting replicas settle; virtual time stands still. */
async function until(replicas: Replica[], ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Promise.all(replicas.map((r) => r.k.whenIdle()));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Every keepAlive of every call, across the replicas' proxies: [time, replica] sorted by time. */
function sendsByCall(replicas: Replica[]): Map<string, [number, string][]> {
  const out = new Map<string, [number, string][]>();
  for (const r of replicas) {
    for (const s of r.proxy.seen) {
      if (!s.callId || s.status !== 200) continue;
      const list = out.get(s.callId) ?? [];
      out.set(s.callId, list);
      list.push([s.at, r.name]);
    }
  }
  for (const list of out.values()) list.sort((x, y) => x[0] - y[0]);
  return out;
}

function assertSpread(replicas: Replica[], total: number) {
  const mean = total / replicas.length;
  for (const r of replicas) {
    assert.ok(r.k.size >= 0.8 * mean && r.k.size <= 1.2 * mean, `${r.name} holds ${r.k.size} of ${total} (mean ${mean})`);
  }
  assert.equal(
    replicas.reduce((n, r) => n + r.k.size, 0),
    total,
    'every call held exactly once',
  );
}

spec(
  'three replicas: tracked on one, each call sent by exactly one at one interval, spread within 20%; close() hands over at once; a join rebalances',
  async () => {
    const ns = 'fleet-a';
    const reps = [await replica('A', ns), await replica('B', ns), await replica('C', ns)];
    const ids = await rig.createCalls(1200);
    const hooks: string[] = [];
    await run(reps, 10_000, 5000); // all three are in the live set
    for (const id of ids) reps[0]?.k.track(id, { onEnded: () => void hooks.push(id) });
    // The replicas joined seconds apart: a bucket may still move once while the fleet forms.
    const settled = rig.clock.now() + INTERVAL;
    await run(reps, 40 * MINUTE);
    assertSpread(reps, 1200);
    const [a, b, c] = reps as [Replica, Replica, Replica];
    let sends = sendsByCall(reps);
    for (const id of ids) {
      const list = sends.get(id) ?? [];
      assert.ok(list.length >= 2, `${id}: ${list.length} sends`);
      assert.equal(new Set(list.filter((x) => x[0] >= settled).map((x) => x[1])).size, 1, `${id}: one sender`);
    }

    // B leaves gracefully: A and C hold all its calls before any virtual time passes.
    const before = rig.clock.now();
    await b.k.close();
    await until([a, c], () => a.k.size + c.k.size === 1200, 'A and C to hold every call');
    assert.equal(rig.clock.now(), before);
    assertSpread([a, c], 1200);

    // D joins: the calls spread over A, C and D.
    const d = await replica('D', ns);
    await run([a, c, d], 5 * MINUTE);
    assertSpread([a, c, d], 1200);
    // One interval and a little more: every call is sent at least once by its new holder.
    await run([a, c, d], 20 * MINUTE);

    // No call went 15 minutes plus a step without a keepAlive, and none got two within one interval.
    sends = sendsByCall([...reps, d]);
    for (const id of ids) {
      const list = sends.get(id) ?? [];
      // The first keepAlive after track() may come early (when the call's slot is later than one
      // interval after it was tracked); from then on, one per interval, whoever holds the call.
      // A handover is pub/sub, in real time: when the new holder hears of it after this step has
      // settled (a loaded machine), its first send is due in the past and goes at the next step,
      // and its second is back on the call's slot, a step less than an interval later.
      const handedOver = (i: number) => i >= 1 && list[i]?.[1] !== list[i - 1]?.[1];
      for (let i = 2; i < list.length; i++) {
        const slack = handedOver(i) || handedOver(i - 1) ? 5000 + 1000 : 1000;
        const gap = (list[i]?.[0] as number) - (list[i - 1]?.[0] as number);
        assert.ok(gap >= INTERVAL - slack && gap <= INTERVAL + slack, `${id}: gap ${gap} ms: ${JSON.stringify(list)}`);
      }
      assert.equal((await rig.ck.store.get(id))?.state, 'established');
    }

    // An end is cluster-wide: every live replica hears it, onEnded runs once, where it was tracked (A).
    const victim = ids[5] as string;
    await (await fetch(`${rig.base}/_callkeeper/calls/${victim}/expire`, { method: 'POST' })).arrayBuffer();
    await run([a, c, d], INTERVAL + 10_000);
    await until([a, c, d], () => [a, c, d].every((r) => r.ended.some((e) => e.callId === victim)), 'every replica to hear the end');
    assert.deepEqual(hooks, [victim]);
    assert.ok([a, c, d].every((r) => !r.k.has(victim)));
    const all = await c.k.calls();
    assert.equal(all.length, 1199);
    assert.ok(all.every((s) => s.trackedBy === 'A' && ['A', 'C', 'D'].includes(s.leaseHolder ?? '')));

    // untrack on D of a call D may not hold: nobody sends for it any more.
    const dropped = ids[6] as string;
    d.k.untrack(dropped);
    const at = rig.clock.now();
    await run([a, c, d], INTERVAL + 10_000);
    sends = sendsByCall([...reps, d]);
    assert.ok(
      (sends.get(dropped) ?? []).every((x) => x[0] <= at),
      'no keepAlive after untrack',
    );

    for (const r of [a, c, d]) await r.k.close();
    for (const r of [...reps, d]) await r.proxy.close();
  },
);

spec('a replica that cannot renew stops sending before its lease lapses; the others take its calls over in time (fenced)', async () => {
  const ns = 'fleet-b';
  const reps = [await replica('A', ns), await replica('B', ns), await replica('C', ns)];
  const [a, b, c] = reps as [Replica, Replica, Replica];
  const ids = await rig.createCalls(300);
  await run(reps, 10_000);
  for (const id of ids) b.k.track(id);
  await run(reps, 20 * MINUTE);
  const heldByC = c.k.size;
  assert.ok(heldByC > 50);
  const errors: string[] = [];
  c.k.on('sharedError', (e) => errors.push(e.operation));
  // C loses Redis (its connection dies and does not come back): it can no longer renew.
  const cut = rig.clock.now();
  c.redis.disconnect(false);
  await run(reps, 30 * MINUTE);
  assert.ok(errors.includes('sync'), 'C reports the failure');
  const lastC = Math.max(...c.proxy.seen.filter((s) => s.callId).map((s) => s.at));
  assert.ok(lastC < cut + TTL, `C's last keepAlive (${lastC - cut} ms after the cut) is within its lease`);
  assertSpread([a, b], 300);
  const sends = sendsByCall(reps);
  let takeovers = 0;
  for (const id of ids) {
    const list = sends.get(id) ?? [];
    for (let i = 1; i < list.length; i++) {
      const gap = (list[i]?.[0] as number) - (list[i - 1]?.[0] as number);
      assert.ok(gap <= INTERVAL + TTL + 20_000, `${id}: gap ${gap}`);
      // A takeover sends at once when the last success it read may be one behind (C could not
      // store it); apart from that send, one keepAlive per interval.
      const takeover = i >= 2 && list[i - 1]?.[1] !== list[i - 2]?.[1];
      if (list[i]?.[1] !== list[i - 1]?.[1]) takeovers += 1;
      else if (!takeover && i >= 2) assert.ok(gap >= INTERVAL - 1000, `${id}: two keepAlives ${gap} ms apart: ${JSON.stringify(list)}`);
    }
    assert.equal((await rig.ck.store.get(id))?.state, 'established');
  }
  assert.ok(takeovers >= heldByC, `each of C's ${heldByC} calls was taken over (${takeovers} moves, some while the fleet formed)`);
  await a.k.close();
  await b.k.close();
  await c.k.close();
  for (const r of reps) await r.proxy.close();
});

spec('a lease too old to send on (no renewal for a while) holds the call back, and the call is sent once a sync renews it', async () => {
  // Redis answers nothing for 43 s (a pause, a failover) from the moment a sync starts: the
  // replica's view of its leases (renewed at that sync's previous one, 15 s or a step more
  // before) passes "leaseTtl minus the margin" (40 s after the pause began, or a little less),
  // so it must not send; the lease in
  // Redis has not lapsed, and the delayed sync renews it. Calls that fell due in those 3 s must
  // be sent then, not dropped: nobody else would ever claim a lease that is still renewed.
  const real = client();
  const syncSha = new Script('sync', SYNC_LUA).sha;
  let gate: Promise<void> | undefined;
  let open: () => void = () => undefined;
  let syncHeldAt: number | undefined;
  const gated = new Proxy(real, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      if (prop === 'evalsha' || prop === 'eval') {
        return async (...args: unknown[]) => {
          if (gate && args[0] === syncSha) syncHeldAt ??= rig.clock.now();
          if (gate) await gate;
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
  const proxy = await FaultProxy.start(rig.base, rig.clock);
  const k = new KeepAlive({
    baseUrl: `${proxy.url}/v1.0`,
    credential: rig.credential(),
    clock: rig.clock,
    replicaId: 'solo',
    shared: { redis: gated, namespace: 'stalled', leaseTtl: TTL, syncInterval: 15_000 },
  });
  const rep: Replica = { name: 'solo', k, proxy, redis: real, ended: [], hooks: [] };
  if (process.env.SHARED_DEBUG) {
    k.on('rebalanced', (e) => console.log('solo rebalanced', rig.clock.now() - (syncHeldAt ?? 0), JSON.stringify(e)));
    k.on('sharedError', (e) => console.log('solo sharedError', rig.clock.now() - (syncHeldAt ?? 0), e.operation, e.error.message));
  }
  replicas.push(rep);
  const ids = await rig.createCalls(1200);
  await run([rep], 10_000);
  for (const id of ids) k.track(id);
  await run([rep], 20 * MINUTE);
  assert.equal(k.size, 1200);
  gate = new Promise((resolve) => {
    open = resolve;
  });
  // Virtual time passes while Redis says nothing; sends check their lease as they fall due.
  while (syncHeldAt === undefined || rig.clock.now() < syncHeldAt + 43_000) {
    rig.clock.advance(1000);
    // The sends of this second reach the proxy before time moves on (whenIdle would wait for the held sync).
    const deadline = Date.now() + 30_000;
    do await new Promise((resolve) => setTimeout(resolve, 1));
    while (k.stats().inFlight > 0 && Date.now() < deadline);
  }
  const from = (syncHeldAt as number) + 40_000;
  const to = rig.clock.now();
  const heldBack = ids.filter((id) => {
    const last =
      proxy
        .keepAlivesOf(id)
        .filter((s) => s.at < (syncHeldAt as number))
        .at(-1)?.at ?? 0;
    return last + INTERVAL >= from && last + INTERVAL <= to;
  });
  assert.ok(heldBack.length > 0, 'some calls fell due while the lease was too old to send on');
  assert.ok(
    proxy.seen.every((s) => !s.callId || s.at < from || s.at > to),
    'nothing is sent on a lease view older than leaseTtl minus the margin',
  );
  gate = undefined;
  open();
  // Second steps while the delayed sync lands, so the next one comes before the lease's expiry
  // (it renews the lease: a dropped call would never come back).
  await run([rep], 20_000, 1000);
  // One interval and a little more: every call, held back or not, is sent again after the renewal.
  await run([rep], 20 * MINUTE);
  for (const id of ids) {
    const times = proxy.keepAlivesOf(id).map((s) => s.at);
    for (let i = 1; i < times.length; i++) {
      const gap = (times[i] as number) - (times[i - 1] as number);
      assert.ok(gap <= INTERVAL + TTL, `${id}: no keepAlive for ${gap} ms (held back: ${heldBack.includes(id)})`);
    }
    assert.ok((times.at(-1) as number) > rig.clock.now() - INTERVAL - 10_000, `${id} is still being kept`);
    assert.equal((await rig.ck.store.get(id))?.state, 'established');
  }
  await k.close();
  await proxy.close();
});

spec(
  'on a 3-master Redis Cluster: two replicas share the calls (one sender each, spread within 20%), close() hands over with the last successes',
  async () => {
    // Every key of a namespace carries one hash tag, so each script's keys live in one slot.
    const cluster = await startRedisCluster(3);
    const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
    const clusterClients: Cluster[] = [];
    const connect = () => {
      const c = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
      c.on('error', () => undefined);
      clusterClients.push(c);
      return c;
    };
    try {
      const ns = 'on-cluster';
      const reps = [await replica('A', ns, connect()), await replica('B', ns, connect())];
      const [a, b] = reps as [Replica, Replica];
      const ids = await rig.createCalls(300);
      await run(reps, 10_000);
      for (const id of ids) a.k.track(id);
      const settled = rig.clock.now() + INTERVAL;
      await run(reps, 40 * MINUTE);
      assertSpread(reps, 300);
      const sends = sendsByCall(reps);
      for (const id of ids) {
        const list = sends.get(id) ?? [];
        assert.ok(list.length >= 2, `${id}: ${list.length} sends`);
        assert.equal(new Set(list.filter((x) => x[0] >= settled).map((x) => x[1])).size, 1, `${id}: one sender`);
      }
      const before = await b.k.calls();
      assert.equal(before.length, 300);
      assert.ok(before.every((c) => c.trackedBy === 'A' && (c.leaseHolder === 'A' || c.leaseHolder === 'B')));
      // A leaves: B holds everything at once, and sends each call one interval after A's last.
      const at = rig.clock.now();
      await a.k.close();
      await until([b], () => b.k.size === 300, 'B to hold every call');
      assert.equal(rig.clock.now(), at);
      await run([b], 20 * MINUTE);
      const after = sendsByCall(reps);
      for (const id of ids) {
        const list = after.get(id) ?? [];
        for (let i = 1; i < list.length; i++) {
          const gap = (list[i]?.[0] as number) - (list[i - 1]?.[0] as number);
          if ((list[i - 1]?.[0] as number) >= settled) assert.ok(gap >= INTERVAL - 1000 && gap <= INTERVAL + 1000, `${id}: gap ${gap}`);
        }
        assert.equal((await rig.ck.store.get(id))?.state, 'established');
      }
      await b.k.close();
      for (const r of reps) await r.proxy.close();
    } finally {
      for (const c of clusterClients) c.disconnect();
      await cluster.stop();
    }
  },
);

const inThisWorker = workerTask({
  spec: async (i: number) => {
    const [, fn] = specs[i] ?? [];
    if (!fn) throw new Error(`no test ${i}`);
    await setUp();
    try {
      await fn();
    } finally {
      await tearDown();
    }
  },
});
if (!inThisWorker) {
  describe('shared keeping', { concurrency: true }, () => {
    for (const [i, [title]] of specs.entries()) test(title, () => inWorker(import.meta.url, 'spec', i));
  });
}
