/** The control-store contract on a real redis-server and a real 3-master Redis Cluster, two clients each (two instances). */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { ManualClock } from '../src/clock/clock.js';
import { createCallkeeper } from '../src/server.js';
import { RedisControlStore } from '../src/store/redis-control-store.js';
import { type ControlStore, controlStoreContract } from './control-store-contract.js';
import { fetchToken } from './helpers.js';
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from './redis-server.js';

let server: RedisServer;
let cluster: RedisCluster;
before(async () => {
  server = await startRedis();
  cluster = await startRedisCluster(3);
});
after(async () => {
  await server?.stop();
  await cluster?.stop();
});

/** A store whose close() also quits its own client (the real store leaves the client to its owner). */
function owning(client: Redis | Cluster, prefix: string): ControlStore {
  const store = new RedisControlStore(client, prefix);
  return Object.assign(store, {
    async close() {
      await client.quit();
    },
  });
}

controlStoreContract('Redis, two clients on one server', async () => {
  const prefix = `test-${randomUUID()}`;
  return { a: owning(new Redis(server.url), prefix), b: owning(new Redis(server.url), prefix) };
});

controlStoreContract('Redis Cluster (3 masters), two clients', async () => {
  const prefix = `test-${randomUUID()}`;
  const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
  return { a: owning(new Cluster(nodes), prefix), b: owning(new Cluster(nodes), prefix) };
});

test('two callkeepers on one Redis share fault counts, throttle counts and the journal', async () => {
  const prefix = `test-${randomUUID()}`;
  const clock = new ManualClock();
  const clients = [new Redis(server.url), new Redis(server.url)];
  const instances = await Promise.all(
    clients.map((c) =>
      createCallkeeper({ logger: false, clock, controlStore: new RedisControlStore(c, prefix), throttle: { limit: 6, windowMs: 60_000 } }),
    ),
  );
  try {
    const bases = await Promise.all(instances.map((ck) => ck.listen('127.0.0.1', 0)));
    const tokens = await Promise.all(bases.map((b) => fetchToken(b)));
    const get = (i: number) =>
      fetch(`${bases[i]}/v1.0/communications/calls/some-call`, { headers: { authorization: `Bearer ${tokens[i]}` } });
    // Windows are aligned: start at one's beginning so all six requests fall in it.
    clock.advance(60_000 - (clock.now() % 60_000));
    const rule = await fetch(`${bases[0]}/_callkeeper/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ match: { callId: 'some-call' }, effect: { status: 503 }, count: 3 }),
    });
    assert.equal(rule.status, 201);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await get(i % 2)).status);
    assert.deepEqual(statuses, [503, 503, 503, 404, 404, 404, 429, 429], 'one count of 3 and one limit of 6 across both');
    const journal = (await (await fetch(`${bases[1]}/_callkeeper/requests?callId=some-call`)).json()) as { value: unknown[] };
    assert.equal(journal.value.length, 8, 'either instance lists the requests both served');
    const reset = await fetch(`${bases[1]}/_callkeeper/reset`, { method: 'POST' });
    assert.equal(reset.status, 200);
    assert.deepEqual(await (await fetch(`${bases[0]}/_callkeeper/requests`)).json(), { value: [] });
    assert.equal((await get(0)).status, 404, 'the reset also cleared the throttle count');
  } finally {
    await Promise.all(instances.map((ck) => ck.close()));
    await Promise.all(clients.map((c) => c.quit()));
  }
});
