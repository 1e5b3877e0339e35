/** Where a Redis store lives, as `--store` names it. */
export interface RedisTarget {
  /** redis-cluster://: the nodes are seeds of one Redis Cluster; redis://: one server. */
  cluster: boolean;
  nodes: { host: string; port: number }[];
  /** The logical database (always 0 on a cluster, which has only that one). */
  db: number;
  username?: string;
  password?: string;
  /** The URL without its password: what health, the banner and the logs show. */
  display: string;
}

export const REDIS_URL_FORMS = 'redis://[:password@]host:port/db or redis-cluster://[:password@]host:port,host:port';

export class RedisUrlError extends Error {}

const fail = (message: string): never => {
  throw new RedisUrlError(message);
};

function node(text: string): { host: string; port: number } {
  // [::1]:6379, 127.0.0.1:6379, redis.local (the port defaults to 6379).
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/.exec(text);
  if (!m) return fail(`'${text}' is not host:port`);
  const port = m[3] === undefined ? 6379 : Number(m[3]);
  if (port < 1 || port > 65535) return fail(`port ${m[3]} of '${text}' is out of range: 1 to 65535`);
  return { host: (m[1] ?? m[2]) as string, port };
}

const decode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return fail('the user name or password is not URL-encoded (write % as %25)');
  }
};

/**
 * Parses `redis://[user:password@]host[:port][/db]` or
 * `redis-cluster://[user:password@]host:port,host:port,...` (the WHATWG URL parser refuses a
 * comma-separated host list, hence a parser of its own). Throws RedisUrlError with what is wrong.
 */
export function parseRedisUrl(input: string): RedisTarget {
  // Error messages never echo a password.
  const text = input.trim().replace(/^([a-z-]+:\/\/[^@/?#]*?:)[^@/?#]*@/, '$1***@');
  const m = /^(redis|redis-cluster):\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^?#]*))?$/.exec(input.trim());
  if (!m) return fail(`'${text}' is not a store URL: use ${REDIS_URL_FORMS}`);
  const cluster = m[1] === 'redis-cluster';
  const [user = '', password] = (m[2] ?? '').split(/:(.*)/s, 2);
  const hosts = (m[3] ?? '').split(',').map((h) => h.trim());
  if (hosts.some((h) => h === '')) fail(`'${text}' names no host (or an empty one in its list)`);
  if (!cluster && hosts.length > 1) fail(`'${text}': one redis:// server has one host; a list of nodes is redis-cluster://`);
  const nodes = hosts.map(node);
  const dbText = m[4] ?? '';
  if (dbText !== '' && !/^\d{1,5}$/.test(dbText)) fail(`the database of '${text}' must be a number (redis://host:port/0)`);
  const db = dbText === '' ? 0 : Number(dbText);
  if (cluster && db !== 0) fail(`a Redis Cluster has only database 0: drop '/${dbText}' from '${text}'`);
  const target: RedisTarget = { cluster, nodes, db, display: '' };
  if (user) target.username = decode(user);
  if (password !== undefined && password !== '') target.password = decode(password);
  const shown = nodes.map((n) => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(',');
  target.display = `${m[1]}://${user ? `${user}@` : ''}${shown}${cluster ? '' : `/${db}`}`;
  return target;
}
