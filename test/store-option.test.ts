/** `serve --store redis://...`: what a user sees when starting on Redis (the several-instance flows are in multi-instance.test.ts). */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { runCli, spawnServe } from './cli-process.js';
import { callBody, fetchToken, tempDir } from './helpers.js';
import { freePort, type RedisServer, startRedis } from './redis-server.js';

const exec = promisify(execFile);
const redisCli = (port: number, ...args: string[]) =>
  exec('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 30_000 }).then((r) => r.stdout.trim());

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

async function stop(p: Awaited<ReturnType<typeof spawnServe>>): Promise<void> {
  p.child.kill('SIGTERM');
  await p.exited;
}

describe('serve --store', () => {
  test('a store URL that is not one, or a Redis that is not there, stops the start with a message naming --store', async () => {
    const bad = await runCli(['serve', '--memory', '--no-https', '--port', '0', '--store', 'http://127.0.0.1:1']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--store: 'http:\/\/127\.0\.0\.1:1' is not a store URL: use redis:\/\//);
    const db = await runCli(['serve', '--memory', '--no-https', '--port', '0'], {
      env: { ...process.env, CALLKEEPER_STORE: 'redis-cluster://127.0.0.1:7000/2' },
    });
    assert.equal(db.code, 2);
    assert.match(db.stderr, /CALLKEEPER_STORE=.*a Redis Cluster has only database 0/);
    const secret = await runCli(['serve', '--memory', '--no-https', '--port', '0', '--store', 'redis://:hunter2@127.0.0.1:99999/0']);
    assert.equal(secret.code, 2);
    assert.doesNotMatch(secret.stderr, /hunter2/, 'an error never echoes the password');
    const nobody = await freePort();
    const down = await runCli(['serve', '--memory', '--no-https', '--port', '0', '--store', `redis://127.0.0.1:${nobody}/0`]);
    assert.equal(down.code, 2);
    assert.match(down.stderr, new RegExp(`--store: cannot reach Redis at redis://127\\.0\\.0\\.1:${nobody}/0`));
  });

  test('on Redis: health names the instance and the store (no password); AOF off is warned about at start, AOF on is not', async () => {
    await redisCli(redis.port, 'CONFIG', 'SET', 'requirepass', 'pa55word');
    const url = `redis://:pa55word@127.0.0.1:${redis.port}/3`;
    const shown = `redis://127.0.0.1:${redis.port}/3`;
    const dir = tempDir();
    const readyFile = join(dir.path, 'ready.json');
    const a = await spawnServe(['--memory', '--no-https', '--store', url, '--log-level', 'info', '--ready-file', readyFile]);
    try {
      const ready = JSON.parse(readFileSync(readyFile, 'utf8')) as { instance: string; store: unknown };
      assert.deepEqual(ready.store, { kind: 'redis', location: shown });
      assert.match(ready.instance, new RegExp(`:${a.child.pid}$`));
      assert.match(a.output(), new RegExp(`Store {8}${shown.replace(/[/.]/g, '\\$&')} {2}\\(shared`));
      const health = (await (await fetch(`${a.base}/_callkeeper/health`)).json()) as Record<string, unknown>;
      assert.equal(health.storeKind, 'redis');
      assert.equal(health.store, shown);
      assert.equal(health.instance, `${/Instance\s+(\S+)/.exec(a.output())?.[1]}`);
      assert.match(String(health.instance), new RegExp(`:${a.child.pid}$`), 'host name and pid');
      assert.doesNotMatch(a.output(), /pa55word/);
      // The warning comes once the banner is out; wait for it (event-driven, generous).
      await until(() => /AOF is off/.test(a.output()));
      assert.match(a.output(), /set appendonly yes and appendfsync everysec/);
      assert.match(a.output(), new RegExp(`"instance":"${String(health.instance)}".*AOF is off`), 'the log line names the instance');
      assert.match(a.output(), new RegExp(`"instance":"${String(health.instance)}".*"msg":"Server listening`), 'so do the others');
    } finally {
      await stop(a);
      dir.remove();
    }
    await redisCli(redis.port, '-a', 'pa55word', '--no-auth-warning', 'CONFIG', 'SET', 'appendonly', 'yes');
    await redisCli(redis.port, '-a', 'pa55word', '--no-auth-warning', 'CONFIG', 'SET', 'appendfsync', 'everysec');
    const b = await spawnServe(['--memory', '--no-https', '--store', url, '--log-level', 'info']);
    try {
      await until(() => /Redis persistence: AOF on/.test(b.output()));
      assert.doesNotMatch(b.output(), /AOF is off/);
    } finally {
      await stop(b);
    }
  });

  test('on Redis: calls work, and so do bot actions (the roster of the call)', async () => {
    const url = `redis://:pa55word@127.0.0.1:${redis.port}/4`;
    const a = await spawnServe(['--memory', '--no-https', '--store', url, '--establish-delay', '1ms']);
    try {
      const token = await fetchToken(a.base);
      const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const created = await fetch(`${a.base}/v1.0/communications/calls`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify(callBody()),
      });
      assert.equal(created.status, 201);
      const { id } = (await created.json()) as { id: string };
      // Someone joins through the control API; the bot reads the roster (RedisBotActionStore).
      const joined = await fetch(`${a.base}/_callkeeper/calls/${id}/participants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ displayName: 'Adele' }),
      });
      assert.equal(joined.status, 201);
      const roster = await fetch(`${a.base}/v1.0/communications/calls/${id}/participants`, { headers: auth });
      assert.equal(roster.status, 200);
      const people = ((await roster.json()) as { value: { info: { identity: { user?: { displayName?: string } } } }[] }).value;
      assert.ok(people.some((p) => p.info.identity.user?.displayName === 'Adele'));
      assert.equal((await fetch(`${a.base}/v1.0/communications/calls/${id}/keepAlive`, { method: 'POST', headers: auth })).status, 200);
      assert.equal((await fetch(`${a.base}/v1.0/communications/calls/${id}`, { method: 'DELETE', headers: auth })).status, 204);
    } finally {
      await stop(a);
    }
  });

  test('a Redis that goes away: Graph and control requests answer 503 with Retry-After, never 500 (faults and the journal live there too)', async () => {
    const gone = await startRedis();
    const a = await spawnServe(['--memory', '--no-https', '--store', `${gone.url}/0`]);
    try {
      const token = await fetchToken(a.base);
      const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const created = await fetch(`${a.base}/v1.0/communications/calls`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify(callBody()),
      });
      const { id } = (await created.json()) as { id: string };
      await gone.stop();
      const calls = `${a.base}/v1.0/communications/calls`;
      for (const [method, url, body] of [
        ['GET', `${calls}/${id}`],
        ['POST', `${calls}/${id}/keepAlive`],
        ['DELETE', `${calls}/${id}`],
        ['POST', calls, JSON.stringify(callBody())],
        ['GET', `${a.base}/_callkeeper/faults`],
        ['GET', `${a.base}/_callkeeper/requests`],
        ['GET', `${a.base}/_callkeeper/health`],
      ] as const) {
        const res = await fetch(url, { method, headers: auth, ...(body ? { body } : {}) });
        assert.equal(res.status, 503, `${method} ${url}`);
        assert.equal(res.headers.get('retry-after'), '1');
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ServiceUnavailable');
      }
    } finally {
      await stop(a);
    }
  });

  test('Redis emptied under a running instance (FLUSHDB, a restart without persistence): clock/advance goes on from where time was', async () => {
    const a = await spawnServe(['--memory', '--no-https', '--store', `redis://:pa55word@127.0.0.1:${redis.port}/6`]);
    try {
      const advance = (ms: number) =>
        fetch(`${a.base}/_callkeeper/clock/advance`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ms }),
        });
      const before = ((await (await advance(3_600_000)).json()) as { epochMs: number }).epochMs;
      await redisCli(redis.port, '-a', 'pa55word', '--no-auth-warning', '-n', '6', 'FLUSHDB');
      const res = await advance(60_000);
      assert.equal(res.status, 200);
      assert.ok(((await res.json()) as { epochMs: number }).epochMs >= before + 60_000, 'not back in time');
      const token = await fetchToken(a.base);
      const created = await fetch(`${a.base}/v1.0/communications/calls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(callBody()),
      });
      assert.equal(created.status, 201);
    } finally {
      await stop(a);
    }
  });

  test('on Redis, fault rules are cached per instance between changes, yet an add or delete on one applies on the other at once', async () => {
    const url = `redis://:pa55word@127.0.0.1:${redis.port}/7`;
    const [a, b] = await Promise.all([
      spawnServe(['--memory', '--no-https', '--store', url]),
      spawnServe(['--memory', '--no-https', '--store', url]),
    ]);
    try {
      const token = await fetchToken(a.base);
      const get = (p: typeof a) =>
        fetch(`${p.base}/v1.0/communications/calls/some-call`, { headers: { authorization: `Bearer ${token}` } });
      const arm = async (p: typeof a, rule: unknown) => {
        const res = await fetch(`${p.base}/_callkeeper/faults`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(rule),
        });
        assert.equal(res.status, 201);
        return ((await res.json()) as { id: string }).id;
      };
      // Both have read (and cached) the empty rule list.
      assert.equal((await get(a)).status, 404);
      assert.equal((await get(b)).status, 404);
      await arm(a, { match: { callId: 'some-call' }, effect: { status: 503 }, count: 3 });
      const statuses: number[] = [];
      for (const p of [b, a, b, a, b]) statuses.push((await get(p)).status);
      assert.deepEqual(statuses, [503, 503, 503, 404, 404], 'armed on A, applied on B at once; one count of 3 across both');
      const id = await arm(b, { match: { callId: 'some-call' }, effect: { status: 500 } });
      assert.equal((await get(a)).status, 500, 'armed on B, applied on A at once');
      assert.equal((await fetch(`${a.base}/_callkeeper/faults/${id}`, { method: 'DELETE' })).status, 204);
      assert.equal((await get(b)).status, 404, 'deleted on A, gone on B at once');
      await arm(b, { match: { callId: 'some-call' }, effect: { status: 502 } });
      assert.equal((await fetch(`${a.base}/_callkeeper/reset`, { method: 'POST' })).status, 200);
      assert.equal((await get(b)).status, 404, 'a reset on A clears the rules B had cached');
    } finally {
      await Promise.all([stop(a), stop(b)]);
    }
  });

  test('instances on one store must agree on its shard count: a different --store-shards is refused', async () => {
    const url = `redis://:pa55word@127.0.0.1:${redis.port}/5`;
    const a = await spawnServe(['--memory', '--no-https', '--store', url, '--store-shards', '4']);
    try {
      const other = await runCli(['serve', '--memory', '--no-https', '--port', '0', '--store', url, '--store-shards', '16']);
      assert.equal(other.code, 2);
      assert.match(other.stderr, /--store: the store at redis:\/\/127\.0\.0\.1:\d+\/5 is sharded 4 ways; start with --store-shards 4/);
    } finally {
      await stop(a);
    }
  });
});

/** Waits (polling a child's output, 50 ms apart, up to 60 s) until `ok` holds. */
async function until(ok: () => boolean): Promise<void> {
  const end = Date.now() + 60_000;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
