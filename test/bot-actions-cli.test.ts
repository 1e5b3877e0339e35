import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { spawnServe } from './cli-process.js';
import { callBody, fetchToken } from './helpers.js';

test('callkeeper serve --prompt-duration sets how long a prompt plays (virtual time)', async () => {
  const p = await spawnServe(['--memory', '--no-https', '--prompt-duration', '10s', '--establish-delay', '1ms']);
  try {
    const token = await fetchToken(p.base, DEFAULT_APP);
    const graph = (path: string, method = 'GET', body?: unknown) =>
      fetch(`${p.base}/v1.0/communications/calls${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const advance = (ms: number) =>
      fetch(`${p.base}/_callkeeper/clock/advance`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ms }),
      });
    const created = (await (await graph('', 'POST', callBody({ callbackUri: 'http://127.0.0.1:9/api/calls' }))).json()) as { id: string };
    await advance(1_000);
    const play = await graph(`/${created.id}/playPrompt`, 'POST', { prompts: [{ mediaInfo: { uri: 'https://127.0.0.1:4/a.wav' } }] });
    assert.equal(play.status, 200, await play.clone().text());
    const op = (await play.json()) as { id: string };
    const status = async () => ((await (await graph(`/${created.id}/operations/${op.id}`)).json()) as { status: string }).status;
    // Real time also passes (scale 1), a little: stop well short of the 10 s.
    await advance(8_000);
    assert.equal(await status(), 'Running');
    await advance(2_000);
    assert.equal(await status(), 'Completed');
  } finally {
    p.child.kill('SIGTERM');
    await p.exited;
  }
});
