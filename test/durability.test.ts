import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KEEPALIVE_TIMEOUT_RESULT } from '../src/calls/call-types.js';
import { ManualClock } from '../src/clock/clock.js';
import { spawnServe } from './cli-process.js';
import { callBody, fetchToken, MINUTE, startServer, tempDir } from './helpers.js';

async function createOver(base: string, token: string): Promise<string> {
  const res = await fetch(`${base}/v1.0/communications/calls`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(callBody()),
  });
  assert.equal(res.status, 201);
  return ((await res.json()) as { id: string }).id;
}

interface ControlCall {
  state: string;
  lastKeepAliveDateTime: string | null;
  deadlineDateTime: string | null;
  resultInfo: unknown;
}

// TLS is beside the point here (and a second app per start): plain http, but for --memory below,
// which must also keep its TLS material out of the working directory.
describe('durability', () => {
  test('restarting on the same data dir keeps live calls and ends the overdue ones at start-up', async () => {
    const dir = tempDir();
    try {
      const clock = new ManualClock(Date.UTC(2026, 5, 1));
      const first = await startServer({ dataDir: dir.path, clock });
      const token = await first.token();
      const overdue = await first.createCall(undefined, token);
      const kept = await first.createCall(undefined, token);
      await first.advance(10 * MINUTE);
      assert.equal((await first.graph(`/v1.0/communications/calls/${kept}/keepAlive`, { method: 'POST', token })).status, 200);
      const overdueDeadline = (await first.ck.store.get(overdue))?.deadline;
      await first.close();

      // Down for 36 minutes: `overdue` passed its deadline (45 min after creation) meanwhile.
      const later = new ManualClock(clock.now() + 36 * MINUTE);
      const second = await startServer({ dataDir: dir.path, clock: later });
      try {
        const ended = await second.ck.store.get(overdue);
        assert.equal(ended?.state, 'terminated', 'ended at start-up, before any request');
        assert.deepEqual(ended?.resultInfo, KEEPALIVE_TIMEOUT_RESULT);
        assert.equal(ended?.endedAt, overdueDeadline);
        // The token issued before the restart still works: the signing key is in the store.
        const res = await second.graph(`/v1.0/communications/calls/${kept}/keepAlive`, { method: 'POST', token });
        assert.equal(res.status, 200);
        assert.equal((await second.graph(`/v1.0/communications/calls/${overdue}/keepAlive`, { method: 'POST', token })).status, 404);
      } finally {
        await second.close();
      }
    } finally {
      dir.remove();
    }
  });

  test('kill -9 right after 200 keepAlives and a 201 create loses nothing', async () => {
    const dir = tempDir();
    try {
      const a = await spawnServe(['--no-https', '--data', dir.path]);
      const token = await fetchToken(a.base);
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push(await createOver(a.base, token));
      const keptAt: Record<string, string | null> = {};
      for (const id of ids) {
        const res = await fetch(`${a.base}/v1.0/communications/calls/${id}/keepAlive`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(res.status, 200);
        keptAt[id] = ((await (await fetch(`${a.base}/_callkeeper/calls/${id}`)).json()) as ControlCall).lastKeepAliveDateTime;
      }
      // The last acknowledged change of all, then SIGKILL at once.
      const lastKa = ids[ids.length - 1] ?? '';
      assert.equal(
        (
          await fetch(`${a.base}/v1.0/communications/calls/${lastKa}/keepAlive`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}` },
          })
        ).status,
        200,
      );
      const lastCreated = await createOver(a.base, token);
      a.child.kill('SIGKILL');
      assert.equal(await a.exited, 'SIGKILL');

      const b = await spawnServe(['--no-https', '--data', dir.path]);
      try {
        const after = (await (await fetch(`${b.base}/_callkeeper/calls/${lastCreated}`)).json()) as ControlCall;
        assert.notEqual(after.state, 'terminated');
        for (const id of ids) {
          const call = (await (await fetch(`${b.base}/_callkeeper/calls/${id}`)).json()) as ControlCall;
          assert.notEqual(call.state, 'terminated', id);
          assert.ok(call.lastKeepAliveDateTime, `keepAlive of ${id} survived`);
          if (id !== lastKa) assert.equal(call.lastKeepAliveDateTime, keptAt[id]);
        }
        const last = (await (await fetch(`${b.base}/_callkeeper/calls/${lastKa}`)).json()) as ControlCall;
        assert.ok(String(last.lastKeepAliveDateTime) >= String(keptAt[lastKa]), 'the very last keepAlive is there');
        // ... and the token issued by the killed process is still accepted.
        const res = await fetch(`${b.base}/v1.0/communications/calls/${lastCreated}/keepAlive`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(res.status, 200);
      } finally {
        b.child.kill('SIGTERM');
        await b.exited;
      }
    } finally {
      dir.remove();
    }
  });

  test('SIGTERM lets an in-flight request finish, then closes the store and exits 0', async () => {
    const dir = tempDir();
    try {
      // info level logs "incoming request": proof the server is handling it before we signal.
      const p = await spawnServe(['--no-https', '--data', dir.path, '--log-level', 'info']);
      const token = await fetchToken(p.base);
      const body = JSON.stringify(callBody());
      const url = new URL(`${p.base}/v1.0/communications/calls`);
      // Headers and half the body now; SIGTERM; the rest of the body afterwards.
      const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => {
              text += c.toString();
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('error', reject);
        req.write(body.slice(0, 40));
        const seen = p.output().split('incoming request').length;
        const waitForRequest = () => {
          if (p.output().split('incoming request').length <= seen) return setTimeout(waitForRequest, 5);
          p.child.kill('SIGTERM');
          const waitForShutdownStart = () => {
            if (p.output().includes('SIGTERM received')) req.end(body.slice(40));
            else setTimeout(waitForShutdownStart, 5);
          };
          waitForShutdownStart();
        };
        waitForRequest();
      });
      const { status, text } = await response;
      assert.equal(status, 201, text);
      assert.equal(await p.exited, 0);
      assert.match(p.output(), /stopped/);
      // A cleanly closed SQLite database has checkpointed and removed its WAL.
      assert.equal(existsSync(join(dir.path, 'callkeeper.db-wal')), false);
      const id = (JSON.parse(text) as { id: string }).id;
      const again = await spawnServe(['--no-https', '--data', dir.path]);
      try {
        const call = (await (await fetch(`${again.base}/_callkeeper/calls/${id}`)).json()) as ControlCall;
        assert.equal(call.state === 'establishing' || call.state === 'established', true);
      } finally {
        again.child.kill('SIGINT');
        assert.equal(await again.exited, 0);
      }
    } finally {
      dir.remove();
    }
  });

  test('--memory writes nothing to disk', async () => {
    const cwd = tempDir();
    try {
      const p = await spawnServe(['--memory'], cwd.path);
      assert.match(p.output(), /Data\s+in memory/);
      const token = await fetchToken(p.base);
      await createOver(p.base, token);
      p.child.kill('SIGTERM');
      assert.equal(await p.exited, 0);
      assert.deepEqual(readdirSync(cwd.path), []);
    } finally {
      cwd.remove();
    }
  });
});
