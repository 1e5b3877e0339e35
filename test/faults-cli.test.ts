/** `callkeeper serve --fault ... --throttle` and a --config file's "fault" rules, in a real child process. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnServe } from './cli-process.js';
import { fetchToken, tempDir } from './helpers.js';

test('--fault and the config file arm rules; --throttle with a small limit answers 429', async () => {
  const dir = tempDir();
  const config = join(dir.path, 'callkeeper.json');
  writeFileSync(
    config,
    JSON.stringify({ apps: [], fault: [{ match: { path: '/communications/calls/*' }, effect: { status: 502 }, count: 1 }] }),
  );
  const s = await spawnServe([
    '--memory',
    '--no-https',
    '--fault',
    '{"match":{"method":"POST","path":"/communications/calls"},"effect":{"status":503,"retryAfter":3},"count":1}',
    '--fault',
    '{"match":{"path":"/communications/calls/*"},"effect":{"status":502},"count":1}',
    '--throttle',
    '--throttle-limit',
    '3',
    '--throttle-window',
    '15m',
  ]);
  try {
    const faults = (await (await fetch(`${s.base}/_callkeeper/faults`)).json()) as { value: { id: string; effect: { status: number } }[] };
    assert.deepEqual(
      faults.value.map((r) => [r.id, r.effect.status]),
      [
        ['config-1', 503],
        ['config-2', 502],
      ],
    );
    const token = await fetchToken(s.base);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const first = await fetch(`${s.base}/v1.0/communications/calls`, { method: 'POST', headers: auth, body: '{}' });
    assert.equal(first.status, 503);
    assert.equal(first.headers.get('retry-after'), '3');
    assert.equal((await fetch(`${s.base}/v1.0/communications/calls/x`, { headers: auth })).status, 502);
    assert.equal((await fetch(`${s.base}/v1.0/communications/calls/x`, { headers: auth })).status, 404);
    const limited = await fetch(`${s.base}/v1.0/communications/calls/x`, { headers: auth });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
  }
});

test('the config file\'s "fault" key arms its rules', async () => {
  const dir = tempDir();
  const config = join(dir.path, 'callkeeper.json');
  writeFileSync(config, JSON.stringify({ fault: [{ match: { path: '/communications/calls/*' }, effect: { status: 504 } }] }));
  const s = await spawnServe(['--memory', '--no-https', '--config', config]);
  try {
    const token = await fetchToken(s.base);
    const res = await fetch(`${s.base}/v1.0/communications/calls/x`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 504);
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
    dir.remove();
  }
});

test('a --fault that is not JSON, or not a valid rule, stops serve with the reason', async () => {
  for (const [flag, reason] of [
    ['{nope', /--fault.*not JSON/],
    ['{"effect":{"status":200}}', /effect\.status/],
  ] as const) {
    await assert.rejects(spawnServe(['--memory', '--no-https', '--fault', flag]), reason);
  }
});
