import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { OPERATION_RESULTS } from '../src/calls/operations.js';
import { RedisBotActionStore } from '../src/store/redis/redis-bot-action-store.js';
import { RedisStore } from '../src/store/redis/redis-store.js';
import { StoreUnavailableError } from '../src/store/store-errors.js';
import { botActionStoreContract } from './bot-action-store-contract.js';
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from './redis-server.js';

const redis: RedisServer = await startRedis();
const cluster: RedisCluster = await startRedisCluster(3);
const clusterUrl = `redis-cluster://${cluster.ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
after(async () => {
  await Promise.all([redis.stop(), cluster.stop()]);
});

const open = async (url: string, fresh: boolean) => {
  const calls = await RedisStore.open({ url, shards: 4 });
  if (fresh) await calls.flushForTests();
  return { calls, bots: new RedisBotActionStore(calls) };
};

botActionStoreContract(
  'Redis (a real redis-server, 4 shards, two handles)',
  () => open(redis.url, true),
  () => open(redis.url, false),
);

botActionStoreContract(
  'Redis Cluster (3 masters, 4 shards, two handles)',
  () => open(clusterUrl, true),
  () => open(clusterUrl, false),
);

test('Redis: a purged call takes its roster, operations and media state with it; its due entries are dropped', async () => {
  const { calls, bots } = await open(redis.url, true);
  try {
    const T0 = Date.UTC(2026, 0, 1);
    const owner = { appId: 'a', tenantId: 't' };
    await calls.create({
      id: 'c1',
      owner,
      state: 'establishing',
      direction: 'outgoing',
      createdAt: T0,
      deadline: T0 + 60_000,
      establishAt: T0,
      resource: {},
    });
    await calls.establishDue(T0, 10);
    const scope = { callId: 'c1', owner, now: T0 };
    await bots.join(scope, [
      {
        id: 'p1',
        callId: 'c1',
        info: {},
        isBot: false,
        isMuted: false,
        serverMuted: false,
        isInLobby: false,
        sharingScreen: false,
        recordingStatus: null,
        metadata: null,
        joinedAt: T0,
      },
    ]);
    const prompt = {
      id: 'op1',
      callId: 'c1',
      kind: 'playPrompt' as const,
      status: 'running' as const,
      clientContext: null,
      resultInfo: null,
      createdAt: T0,
      dueAt: T0 + 30_000,
      completedAt: null,
      result: OPERATION_RESULTS.completed,
      effects: {},
      data: {},
    };
    assert.ok((await bots.startOperation(scope, prompt, {})).ok);
    const botKey = `{ck:${calls.shared.shardOf('c1')}}:bot:c1`;
    const exists = () => calls.shared.command((c) => c.exists(botKey));
    assert.equal(await exists(), 1);
    await calls.end('c1', null, T0 + 1_000, { code: 200, subcode: 7000, message: 'bye' });
    await calls.purgeEnded(T0 + 1_000, 10);
    assert.equal(await exists(), 0);
    assert.equal(await bots.nextDueAt(), T0 + 30_000, 'the due entry outlives the purge until its moment');
    assert.deepEqual(await bots.runDue(T0 + 30_000, 10), []);
    assert.equal(await bots.nextDueAt(), undefined);
    assert.equal(await exists(), 0, 'dropping the due entry does not bring the state back');
  } finally {
    await calls.close();
  }
});

test('Redis: bot actions on an unreachable server are StoreUnavailableError (the HTTP layer answers 503)', async () => {
  const gone = await startRedis();
  const calls = await RedisStore.open({ url: gone.url, shards: 2, commandTimeoutMs: 1_000 });
  const bots = new RedisBotActionStore(calls);
  await gone.stop();
  const scope = { callId: 'c1', owner: null, now: Date.UTC(2026, 0, 1) };
  try {
    await assert.rejects(bots.roster(scope), StoreUnavailableError);
    await assert.rejects(bots.tones(scope, ['tone1']), StoreUnavailableError);
    await assert.rejects(bots.runDue(scope.now, 10), StoreUnavailableError);
    await assert.rejects(bots.nextDueAt(), StoreUnavailableError);
  } finally {
    await calls.close();
  }
});
