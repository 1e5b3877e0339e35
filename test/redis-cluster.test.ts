/**
 * The Redis store on a real 3-master Redis Cluster (redis-server --cluster-enabled yes joined by
 * redis-cli --cluster create): the shared store contract, and two serve children on
 * redis-cluster://... acting as one callkeeper.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { KEEPALIVE_TIMEOUT_RESULT } from '../src/calls/call-types.js';
import { RedisStore } from '../src/store/redis/redis-store.js';
import { spawnServe } from './cli-process.js';
import { requestToken } from './helpers.js';
import { type RedisCluster, startRedisCluster } from './redis-server.js';
import { controlCall, entriesOf, Fleet, HoldingBot } from './scale-out.js';
import { type ContractOptions, storeContract } from './store-contract.js';

const cluster: RedisCluster = await startRedisCluster(3);
const clusterUrl = `redis-cluster://${cluster.ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
const handles: RedisStore[] = [];
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1);
const exec = promisify(execFile);
const redisCli = (port: number, ...args: string[]) =>
  exec('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 30_000 }).then((r) => r.stdout.trim());
after(async () => {
  await Promise.all(handles.map((h) => h.close()));
  await cluster.stop();
});

const openOn = async (o: ContractOptions = {}, fresh = true) => {
  // The total outbox bound holds per shard (docs/decisions.md, "Outbox bounds"): the contract's exact figures need one shard.
  const s = await RedisStore.open({
    url: clusterUrl,
    shards: o.outboxBounds ? 1 : 8,
    ...(o.outboxBounds ? { outboxBounds: o.outboxBounds } : {}),
  });
  if (fresh) await s.flushForTests();
  handles.push(s);
  return s;
};

storeContract(
  'Redis Cluster (3 masters, 8 shards over them)',
  (o) => openOn(o),
  async (o) => {
    const x = await openOn(o);
    return [x, await openOn(o, false)];
  },
);

describe('two instances on a Redis Cluster', { timeout: 600_000 }, () => {
  test('the shards live on every master', async () => {
    const s = await openOn();
    for (let i = 0; i < 64; i++) {
      await s.create({
        id: `call-${i}`,
        owner: { appId: 'a', tenantId: 't' },
        state: 'establishing',
        direction: 'outgoing',
        createdAt: T0,
        deadline: T0 + MINUTE,
        establishAt: null,
        resource: {},
      });
    }
    const sizes = await Promise.all(cluster.ports.map((p) => redisCli(p, 'DBSIZE')));
    assert.ok(
      sizes.every((n) => Number(n) > 0),
      `keys per master: ${sizes.join(', ')}`,
    );
  });

  test('are one callkeeper: create on A, keepAlive/DELETE on B, an advance on B ends the calls of both once, apps shared, health names the cluster', async () => {
    const args = ['--memory', '--no-https', '--store', clusterUrl];
    const instances = await Promise.all([spawnServe(args), spawnServe(args)]);
    const bot = await new HoldingBot().start();
    try {
      const fleet = await Fleet.of(instances);
      for (const i of [0, 1]) {
        const h = (await (await fetch(`${fleet.base(i)}/_callkeeper/health`)).json()) as {
          instance: string;
          store: string;
          storeKind: string;
        };
        assert.equal(h.store, clusterUrl);
        assert.equal(h.storeKind, 'redis');
        assert.match(h.instance, new RegExp(`:${instances[i]?.child.pid}$`));
      }
      const hungUp = await fleet.createId(0, bot.url);
      assert.equal((await fleet.keepAlive(1, hungUp)).status, 200);
      assert.equal((await fleet.hangUp(1, hungUp)).status, 204);
      assert.equal((await fleet.graph(0, `/${hungUp}`)).status, 404);

      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await fleet.createId(i % 2, bot.url));
      for (const id of ids) assert.equal((await fleet.keepAlive(1 - (ids.indexOf(id) % 2), id)).status, 200);
      // Established, and its roster (queued last) notified; then nothing in flight when time jumps (a
      // lease is virtual time: the advance would expire it and the other instance deliver it again).
      const rosterOf = (id: string) => bot.received.some((d) => d.callId === id && d.states.includes('updated /participants'));
      await bot.until(
        () => ids.every((id) => bot.statesOf(id).includes('updated/established') && rosterOf(id)),
        'every call established, its roster notified',
      );
      await fleet.drained(0);
      const before = await fleet.now(0);
      await fleet.advance(1, 46 * MINUTE);
      assert.ok((await fleet.now(0)) >= before + 46 * MINUTE, "B's advance is A's time at once");
      await bot.until(() => ids.every((id) => bot.statesOf(id).includes('deleted/terminated')), 'every call ended');
      await fleet.drained(0);
      for (const id of ids) {
        const entries = await entriesOf(fleet.base(1), id);
        assert.equal(entries.filter((e) => e.transition === 'ended').length, 1, `one end of ${id}`);
        assert.deepEqual(
          bot.cridsOf(id),
          entries.map((e) => e.crid),
          `each notification of ${id} once, in order`,
        );
        const { call } = await controlCall(fleet.base(0), id);
        assert.deepEqual(call?.resultInfo, KEEPALIVE_TIMEOUT_RESULT);
      }
      assert.deepEqual(bot.statesOf(hungUp).slice(-2), ['updated/terminating', 'deleted/terminated'], 'the hang-up on B notified');

      const reg = await fetch(`${fleet.base(0)}/_callkeeper/apps`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ displayName: 'cluster bot', roles: ['Calls.Initiate.All'] }),
      });
      assert.equal(reg.status, 201);
      const app = (await reg.json()) as { tenantId: string; clientId: string; clientSecret: string; displayName: string };
      assert.equal(
        (await requestToken(fleet.base(1), { ...app, roles: ['Calls.Initiate.All'] })).status,
        200,
        'registered on A, a token from B',
      );
      const reset = await fetch(`${fleet.base(1)}/_callkeeper/reset`, { method: 'POST' });
      assert.equal(reset.status, 200, 'reset across the masters');
      assert.equal((await controlCall(fleet.base(0), ids[0] as string)).status, 404);
    } finally {
      for (const p of instances) {
        p.child.kill('SIGTERM');
        await p.exited;
      }
      await bot.stop();
    }
  });
});
