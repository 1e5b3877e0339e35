import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { RedisStore } from '../src/store/redis/redis-store.js';
import { StoreUnavailableError } from '../src/store/store-errors.js';
import { type RedisServer, startRedis } from './redis-server.js';
import { type ContractOptions, storeContract } from './store-contract.js';

const redis: RedisServer = await startRedis();
after(async () => {
  await Promise.all(handles.map((h) => h.close()));
  await redis.stop();
});

const handles: RedisStore[] = [];
const openOn = async (url: string, o: ContractOptions = {}, fresh = true) => {
  // The total bound holds per shard (total / shards, docs/architecture.md): the contract's exact
  // figures need one shard.
  const s = await RedisStore.open({ url, shards: o.outboxBounds ? 1 : 4, ...(o.outboxBounds ? { outboxBounds: o.outboxBounds } : {}) });
  if (fresh) await s.flushForTests();
  handles.push(s);
  return s;
};

storeContract(
  'Redis (a real redis-server, 4 shards)',
  (o) => openOn(redis.url, o),
  async (o) => {
    const x = await openOn(redis.url, o);
    return [x, await openOn(redis.url, o, false)];
  },
);

test('Redis: an unreachable server is StoreUnavailableError (the HTTP layer answers 503)', async () => {
  const other = await startRedis();
  const s = await RedisStore.open({ url: other.url, shards: 2, commandTimeoutMs: 1_000 });
  await other.stop();
  await assert.rejects(s.get('x'), StoreUnavailableError);
  await assert.rejects(s.keepAlive('x', { appId: 'a', tenantId: 't' }, 1, 2), StoreUnavailableError);
  await s.close();
  await assert.rejects(RedisStore.open({ url: other.url }), StoreUnavailableError);
});
