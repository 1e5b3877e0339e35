import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisLike } from './run-script.js';

/** The URL forms `callkeeper keep --redis` takes (the same as `serve --store`). */
export const REDIS_URL_FORMS = 'redis://[user:password@]host:port[/db], rediss://... (TLS) or redis-cluster://host:port,host:port';

/**
 * An ioredis client for a URL: one server (redis://, rediss://) or a Cluster (redis-cluster://
 * with one or more seed nodes). Connects before it resolves, so a wrong URL is said at start
 * instead of as a stream of failed syncs; the caller closes it (quit()).
 */
export async function connectRedis(text: string, connectTimeoutMs = 10_000): Promise<RedisLike> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`--redis: '${text}' is not a URL; use ${REDIS_URL_FORMS}`);
  }
  const common: RedisOptions = {
    lazyConnect: true,
    connectTimeout: connectTimeoutMs,
    // A command fails after one reconnect attempt: shared keeping reports it (sharedError) and
    // retries on its own schedule, rather than piling commands up while Redis is away.
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 100, 1_000),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  };
  let client: RedisLike;
  if (url.protocol === 'redis-cluster:') {
    // new URL() keeps only the first host:port of a comma list; read the list ourselves.
    const hosts = (text.replace(/^redis-cluster:\/\/([^@]*@)?/, '').split(/[/?#]/)[0] ?? '').split(',').filter(Boolean);
    const nodes = hosts.map((h) => {
      const [host, port] = h.split(':');
      return { host: host || '127.0.0.1', port: Number(port || 6379) };
    });
    if (nodes.length === 0 || nodes.some((n) => !Number.isInteger(n.port) || n.port < 1 || n.port > 65535)) {
      throw new Error(`--redis: '${text}' names no host:port; use ${REDIS_URL_FORMS}`);
    }
    client = new Cluster(nodes, { lazyConnect: true, redisOptions: common, clusterRetryStrategy: () => 200 });
  } else if (url.protocol === 'redis:' || url.protocol === 'rediss:') {
    const db = Number(url.pathname.replace(/^\//, '') || '0');
    if (!Number.isInteger(db) || db < 0) throw new Error(`--redis: '${url.pathname}' is not a database number`);
    client = new Redis({
      ...common,
      host: url.hostname || '127.0.0.1',
      port: Number(url.port || 6379),
      db,
      ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    });
  } else {
    throw new Error(`--redis: ${url.protocol} is not a Redis URL; use ${REDIS_URL_FORMS}`);
  }
  // Connection trouble comes as events; operations reject on their own and are reported.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new Error(`--redis: cannot reach Redis at ${url.host}: ${(err as Error).message}`);
  }
  return client;
}
