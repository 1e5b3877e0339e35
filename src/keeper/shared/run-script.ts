import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** The ioredis client shared keeping talks through: a Redis or a Cluster (all keys share one hash tag). */
export type RedisLike = Redis | Cluster;

/**
 * Runs a Lua script by its SHA1, loading it on NOSCRIPT (a restarted or failed-over server
 * forgets scripts). No `defineCommand`: the caller's client is left as it was given.
 */
export class Script {
  readonly sha: string;
  constructor(
    readonly name: string,
    readonly lua: string,
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(redis: RedisLike, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}
