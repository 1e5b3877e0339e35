/**
 * Three `callkeeper serve --store redis://...` child processes on one real redis-server are one
 * callkeeper (issue 10, item 3), and stay one when one of them is killed with SIGKILL under load.
 * Deadlines move by clock/advance (virtual time), never by real sleeps.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KEEPALIVE_TIMEOUT_RESULT } from '../src/calls/call-types.js';
import { type ServeProcess, spawnServe } from './cli-process.js';
import { fetchToken } from './helpers.js';
import { type RedisServer, startRedis } from './redis-server.js';
import { collapse, controlCall, entriesOf, Fleet, HoldingBot, tcpPortsOf } from './scale-out.js';

const MINUTE = 60_000;
/** --notify-timeout: a lease lasts this + 1 s (virtual, at scale 1), far longer than the test runs in real time. */
const NOTIFY_TIMEOUT_MS = 5 * MINUTE;
const LEASE_MS = NOTIFY_TIMEOUT_MS + 1_000;

let redis: RedisServer;
let storeUrl: string;
let instances: ServeProcess[] = [];
let fleet: Fleet;
const bots: HoldingBot[] = [];

before(async () => {
  redis = await startRedis();
  storeUrl = `${redis.url}/0`;
  const args = ['--memory', '--no-https', '--store', storeUrl, '--notify-timeout', `${NOTIFY_TIMEOUT_MS / 1000}s`];
  instances = await Promise.all([spawnServe(args), spawnServe(args), spawnServe(args)]);
  fleet = await Fleet.of(instances);
});
after(async () => {
  for (const p of instances) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  }
  await Promise.all(bots.map((b) => b.stop()));
  await redis?.stop();
});

async function bot(): Promise<HoldingBot> {
  const b = await new HoldingBot().start();
  bots.push(b);
  return b;
}

const json = async <T>(res: Response | Promise<Response>): Promise<T> => (await (await res).json()) as T;

describe('three instances on one Redis', { timeout: 900_000 }, () => {
  test('are one callkeeper: create on A, keepAlive on B, GET/DELETE on C; an advance on any moves all; apps and tokens work on all; health names each', async () => {
    const health = await Promise.all(
      [0, 1, 2].map((i) => json<{ instance: string; store: string; storeKind: string }>(fetch(`${fleet.base(i)}/_callkeeper/health`))),
    );
    for (const [i, h] of health.entries()) {
      assert.equal(h.storeKind, 'redis');
      assert.equal(h.store, storeUrl);
      assert.match(h.instance, new RegExp(`:${instances[i]?.child.pid}$`), 'host name and pid of that process');
    }
    assert.equal(new Set(health.map((h) => h.instance)).size, 3, 'three names');

    const bobby = await bot();
    const id = await fleet.createId(0, bobby.url);
    assert.equal((await fleet.keepAlive(1, id)).status, 200, 'keepAlive on B of a call made on A (token of A)');
    const got = await fleet.graph(2, `/${id}`);
    assert.equal(got.status, 200, 'GET on C');
    assert.equal(((await got.json()) as { id: string }).id, id);
    assert.equal((await fleet.hangUp(2, id)).status, 204, 'DELETE on C');
    assert.equal((await fleet.graph(0, `/${id}`)).status, 404, 'gone on A');
    assert.equal((await fleet.keepAlive(1, id)).status, 404, 'and on B');
    await bobby.until(() => bobby.statesOf(id).includes('deleted/terminated'), 'the hang-up notified');

    // clock/advance on B: A and C show it on the very next request (the change feed, not a poll).
    const before = await Promise.all([0, 1, 2].map((i) => fleet.now(i)));
    const advanced = await fleet.advance(1, 10 * MINUTE);
    assert.ok(advanced.epochMs >= Math.max(...before) + 10 * MINUTE);
    const [onA, onC] = await Promise.all([fleet.now(0), fleet.now(2)]);
    assert.ok(onA >= (before[0] as number) + 10 * MINUTE, `A: ${onA - (before[0] as number)} ms later`);
    assert.ok(onC >= (before[2] as number) + 10 * MINUTE, `C: ${onC - (before[2] as number)} ms later`);

    // An app registered on C gets tokens from A and makes calls on B.
    const reg = await fetch(`${fleet.base(2)}/_callkeeper/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ displayName: 'scaled bot', roles: ['Calls.Initiate.All'] }),
    });
    assert.equal(reg.status, 201);
    const app = (await reg.json()) as { tenantId: string; clientId: string; clientSecret: string; displayName: string };
    const token = await fetchToken(fleet.base(0), { ...app, roles: ['Calls.Initiate.All'] });
    const made = await fetch(`${fleet.base(1)}/v1.0/communications/calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        '@odata.type': '#microsoft.graph.call',
        callbackUri: bobby.url,
        requestedModalities: ['audio'],
        mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
        targets: [
          {
            '@odata.type': '#microsoft.graph.invitationParticipantInfo',
            identity: { user: { id: '8d4d8ca3-0000-4000-8000-000000000001' } },
          },
        ],
      }),
    });
    assert.equal(made.status, 201, 'the app registered on C makes a call on B');
    const listed = await json<{ value: { clientId: string }[] }>(fetch(`${fleet.base(0)}/_callkeeper/apps`));
    assert.ok(
      listed.value.some((a) => a.clientId === app.clientId),
      'A lists it',
    );
  });

  test('every expired call ends exactly once, with one notification sequence, whichever instance made it', async () => {
    const b = await bot();
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await fleet.createId(i % 3, b.url));
    // Established, and its roster (queued last) notified.
    const rosterOf = (id: string) => b.received.some((d) => d.callId === id && d.states.includes('updated /participants'));
    await b.until(
      () => ids.every((id) => b.statesOf(id).includes('updated/established') && rosterOf(id)),
      'every call established, its roster notified',
    );
    // Nothing in flight when time jumps: a lease is virtual time, so the advance would expire it and
    // another instance would deliver the entry again.
    await fleet.drained(1);
    // All three sweep at once (the advance wakes each one's scheduler); the shard claims let one end each call.
    await fleet.advance(0, 46 * MINUTE);
    await b.until(() => ids.every((id) => b.statesOf(id).includes('deleted/terminated')), 'every call ended');
    await fleet.drained(1);
    for (const id of ids) {
      const entries = await entriesOf(fleet.base(2), id);
      assert.equal(entries.filter((e) => e.transition === 'ended').length, 1, `one end of ${id}`);
      assert.deepEqual(
        entries.map((e) => e.status),
        entries.map(() => 'delivered'),
      );
      assert.deepEqual(
        b.cridsOf(id),
        entries.map((e) => e.crid),
        `each notification of ${id} once, in order`,
      );
      assert.deepEqual(b.statesOf(id), ['updated/establishing', 'updated/established', 'updated/terminating', 'deleted/terminated']);
      const { call } = await controlCall(fleet.base(1), id);
      assert.equal(call?.state, 'terminated');
      assert.deepEqual(call?.resultInfo, KEEPALIVE_TIMEOUT_RESULT);
    }
  });

  test('kill -9 of one under mixed load: nothing acknowledged is lost, every notification arrives in order, its leases come back within the lease time', async (t) => {
    const b = await bot();
    const VICTIM = 2;
    const victim = instances[VICTIM] as ServeProcess;
    const alive = new Set([0, 1, 2]);
    const created = new Map<string, number>();
    const kept = new Set<string>();
    const hung = new Set<string>();
    /** What the victim acknowledged before it died: creates, keepAlives, hang-ups. */
    const byVictim = { creates: 0, keepAlives: 0, hangUps: 0 };
    const unexpected: string[] = [];
    let stop = false;
    let acked = 0;
    const pick = (not?: number): number => {
      const xs = [...alive].filter((i) => i !== not);
      return xs[Math.floor(Math.random() * xs.length)] ?? 0;
    };
    /** A request to an instance killed meanwhile fails: it was never acknowledged. */
    const attempt = async (i: number, run: () => Promise<Response>, ok: number): Promise<Response | undefined> => {
      try {
        const res = await run();
        if (res.status !== ok) unexpected.push(`${res.status} from instance ${i}: ${await res.text()}`);
        return res.status === ok ? res : undefined;
      } catch {
        if (alive.has(i)) unexpected.push(`instance ${i} refused a connection while alive`);
        return undefined;
      }
    };
    const worker = async () => {
      while (!stop) {
        const a = pick();
        const res = await attempt(a, () => fleet.create(a, b.url), 201);
        if (!res) continue;
        const { id } = (await res.json()) as { id: string };
        created.set(id, a);
        acked++;
        if (a === VICTIM) byVictim.creates++;
        const k = pick(a);
        if (await attempt(k, () => fleet.keepAlive(k, id), 200)) {
          kept.add(id);
          if (k === VICTIM) byVictim.keepAlives++;
        }
        if (Math.random() < 0.5) {
          const h = pick(k);
          if (await attempt(h, () => fleet.hangUp(h, id), 204)) {
            hung.add(id);
            if (h === VICTIM) byVictim.hangUps++;
          }
        }
      }
    };
    const createdAtLeast = (n: number) => b.until(() => acked >= n, `${n} acknowledged creates`, 300_000);
    const workers = Array.from({ length: 4 }, worker);

    await createdAtLeast(40);
    // The bot stops answering: every instance's deliveries pile up, in flight, under lease.
    b.hold = true;
    const victimPorts = () => tcpPortsOf(victim.child.pid as number);
    await b.until(() => [...b.held.values()].some((d) => victimPorts().has(d.remotePort)), 'a delivery held from the victim');
    const ports = victimPorts();
    const heldFromVictim = [...b.held.values()].filter((d) => ports.has(d.remotePort));
    const killedAt = Date.now();
    alive.delete(VICTIM);
    victim.child.kill('SIGKILL');
    assert.equal(await victim.exited, 'SIGKILL');
    // Its connections die with it: the bot never answered those deliveries.
    await b.until(() => heldFromVictim.every((d) => b.dropped.includes(d)), "the victim's held deliveries cut off");
    const leased = b.dropped.filter((d) => !b.received.some((r) => r.crid === d.crid));
    assert.ok(leased.length >= 1);
    assert.ok(
      Object.values(byVictim).every((n) => n > 0),
      `the victim acknowledged creates, keepAlives and hang-ups before it died: ${JSON.stringify(byVictim)}`,
    );
    await createdAtLeast(acked + 20);
    b.release();
    await createdAtLeast(acked + 20);
    stop = true;
    await Promise.all(workers);
    assert.deepEqual(unexpected, [], 'the survivors answered every request as usual');

    // Still leased to the dead instance (its lease runs 5 min of virtual time): nobody delivered them.
    for (const d of leased) assert.ok(!b.received.some((r) => r.crid === d.crid), `${d.crid} not delivered while leased`);
    // One lease later (virtual time), the survivors deliver them without anything else moving time.
    const beforeAdvance = await fleet.now(0);
    await fleet.advance(0, LEASE_MS);
    await b.until(() => leased.every((d) => b.received.some((r) => r.crid === d.crid)), "the dead instance's leased notifications");
    const virtualLate = (await fleet.now(1)) - beforeAdvance - LEASE_MS;
    t.diagnostic(
      `${created.size} calls acknowledged (${kept.size} kept alive, ${hung.size} hung up); ${leased.length} deliveries cut off by the kill came back ` +
        `within the lease + ${virtualLate} ms (virtual); ${((Date.now() - killedAt) / 1000).toFixed(1)} s real from kill to the last`,
    );
    await fleet.drained(0);

    for (const [id, via] of created) {
      // Read through a survivor that did not acknowledge it.
      const reader = via === 0 ? 1 : 0;
      const { status, call } = await controlCall(fleet.base(reader), id);
      assert.equal(status, 200, `acknowledged create of ${id} (on ${via}) lost`);
      if (kept.has(id)) assert.ok(call?.lastKeepAliveDateTime, `acknowledged keepAlive of ${id} lost`);
      if (hung.has(id)) {
        assert.equal(call?.state, 'terminated', `acknowledged hang-up of ${id} lost`);
        assert.equal(call?.resultInfo?.subcode, 7000);
      }
    }
    const calls = new Set([...created.keys(), ...b.received.map((d) => d.callId)]);
    let repeats = 0;
    for (const id of calls) {
      const entries = await entriesOf(fleet.base(1), id);
      assert.ok(entries.length >= 1, `${id} has notifications`);
      assert.deepEqual(
        entries.filter((e) => e.status !== 'delivered').map((e) => `${e.seq} ${e.status}`),
        [],
        `every notification of ${id} delivered`,
      );
      const seen = b.cridsOf(id);
      assert.deepEqual(
        collapse(seen),
        entries.map((e) => e.crid),
        `the notifications of ${id}: at least once, in order`,
      );
      repeats += seen.length - entries.length;
    }
    t.diagnostic(`${calls.size} calls, ${b.received.length} deliveries, ${repeats} of them repeats`);

    // A new instance in the dead one's place joins at the shared virtual time, with every call.
    const timeBefore = await fleet.now(0);
    const replacement = await spawnServe([
      '--memory',
      '--no-https',
      '--store',
      storeUrl,
      '--notify-timeout',
      `${NOTIFY_TIMEOUT_MS / 1000}s`,
    ]);
    instances[VICTIM] = replacement;
    const health = await json<{ instance: string; calls: { active: number; ended: number } }>(
      fetch(`${replacement.base}/_callkeeper/health`),
    );
    assert.match(health.instance, new RegExp(`:${replacement.child.pid}$`));
    assert.ok((await fleet.now(VICTIM)) >= timeBefore, 'its clock is not behind');
    const [someId] = created.keys();
    assert.equal((await controlCall(replacement.base, someId as string)).status, 200);
  });
});
