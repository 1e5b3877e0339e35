import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, watch } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { CLI, childEnv, runCli, SHORT_CHILD_NODE_FLAGS } from './cli-process.js';
import { callBody, requestToken, tempDir } from './helpers.js';

interface LogLine {
  event?: string;
  msg?: string;
  pid?: number;
  hostname?: string;
  instance?: string;
  time?: number;
  requestId?: string;
  clientRequestId?: string;
  callId?: string;
}

interface Child {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | string>;
}

function start(args: string[], env: Record<string, string | undefined> = {}): Child {
  const child = spawn(process.execPath, [...SHORT_CHILD_NODE_FLAGS, CLI, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv({ ...process.env, ...env }),
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Resolves once `path` exists (event-driven, bounded by a generous timeout). */
function whenFileExists(path: string, child: Child): Promise<void> {
  return new Promise((resolve, reject) => {
    if (existsSync(path)) return resolve();
    const watcher = watch(dirname(path), () => {
      if (existsSync(path)) done();
    });
    const timer = setTimeout(() => done(new Error(`no ${path} within 120 s:\n${child.stdout()}${child.stderr()}`)), 120_000);
    void child.exited.then((code) => done(new Error(`serve exited (${code}):\n${child.stderr()}`)));
    function done(err?: Error) {
      watcher.close();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    }
  });
}

/** Resolves with stdout's first line once there is one. */
function firstLine(c: Child): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const i = c.stdout().indexOf('\n');
      if (i >= 0) {
        clearTimeout(timer);
        resolve(c.stdout().slice(0, i));
      }
    };
    const timer = setTimeout(() => reject(new Error(`no output within 120 s:\n${c.stderr()}`)), 120_000);
    c.child.stdout?.on('data', check);
    void c.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}):\n${c.stderr()}`));
    });
  });
}

async function stop(c: Child): Promise<number | string> {
  c.child.kill('SIGTERM');
  return c.exited;
}

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

describe('serve for machines: free ports, a ready file, JSON logs', () => {
  test('--port 0 alone picks free ports for http and https; two servers run side by side; --ready-file holds the URLs', async () => {
    const dir = tempDir();
    const env = { XDG_STATE_HOME: dir.path };
    const files = [join(dir.path, 'a.json'), join(dir.path, 'b.json')];
    const servers = files.map((f) => start(['--memory', '--port', '0', '--ready-file', f], env));
    try {
      await Promise.all(files.map((f, i) => whenFileExists(f, servers[i] as Child)));
      const ready = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Record<string, string | number | null>);
      const ports = ready.flatMap((r) => [new URL(String(r.http)).port, new URL(String(r.https)).port]);
      assert.equal(new Set(ports).size, 4, `four different ports: ${ports.join(', ')}`);
      for (const r of ready) {
        assert.match(String(r.http), /^http:\/\/127\.0\.0\.1:\d+$/);
        assert.match(String(r.https), /^https:\/\/127\.0\.0\.1:\d+$/);
        assert.equal(r.graph, `${r.https}/v1.0`);
        assert.equal(r.authority, r.https);
        assert.equal(r.data, 'memory');
        assert.equal(typeof r.pid, 'number');
        assert.ok(existsSync(String(r.caPath)), 'the CA to trust');
        const health = await fetch(String(r.health));
        assert.equal(health.status, 200);
      }
      for (const s of servers) assert.equal(await stop(s), 0);
      for (const f of files) assert.equal(existsSync(f), false, 'a clean stop removes the ready file');
    } finally {
      for (const s of servers) s.child.kill('SIGKILL');
      dir.remove();
    }
  });

  test('--log-format json: stdout is JSON lines only, a ready event first; the banner goes to stderr', async () => {
    const dir = tempDir();
    const s = start(['--memory', '--port', '0', '--log-format', 'json', '--log-level', 'info'], { XDG_STATE_HOME: dir.path });
    try {
      const ready = JSON.parse(await firstLine(s)) as { event: string; http: string; https: string };
      assert.equal(ready.event, 'ready');
      // Requests produce log lines (info): they come after the ready event, as JSON.
      assert.equal((await fetch(`${ready.http}/_callkeeper/health`)).status, 200);
      assert.equal((await fetch(`${ready.http}/v1.0/communications/calls/nope`)).status, 401);
      // A call kept alive once, then left to expire (virtual time, moved by the control API).
      const token = (await (await requestToken(ready.http)).json()) as { access_token: string };
      const auth = { authorization: `Bearer ${token.access_token}` };
      const created = await fetch(`${ready.http}/v1.0/communications/calls`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(callBody({ callbackUri: 'http://127.0.0.1:9/unused' })),
      });
      assert.equal(created.status, 201);
      const callId = ((await created.json()) as { id: string }).id;
      const kept = await fetch(`${ready.http}/v1.0/communications/calls/${callId}/keepAlive`, {
        method: 'POST',
        headers: { ...auth, 'client-request-id': 'cli-keepalive-0001' },
      });
      assert.equal(kept.status, 200);
      const advanced = await fetch(`${ready.http}/_callkeeper/clock/advance`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ms: '46m' }),
      });
      assert.equal(advanced.status, 200);
      assert.equal(await stop(s), 0);
      const lines = s.stdout().trimEnd().split('\n');
      assert.ok(lines.length >= 4, s.stdout());
      const parsed = lines.map((l) => JSON.parse(l) as LogLine);
      assert.equal(parsed[0]?.event, 'ready');
      assert.ok(
        parsed.some((p) => p.msg === 'incoming request'),
        'request logs are on stdout too',
      );
      // One logger: Fastify's lines for the keepAlive and its domain event, same base fields, same requestId.
      const requestId = kept.headers.get('request-id');
      const ofKeepAlive = parsed.filter((p) => p.requestId === requestId);
      assert.deepEqual(
        ofKeepAlive.map((p) => p.event ?? p.msg),
        ['incoming request', 'call.keepAlive', 'request completed'],
      );
      const event = ofKeepAlive[1] as LogLine;
      assert.deepEqual([event.callId, event.clientRequestId], [callId, 'cli-keepalive-0001']);
      for (const p of ofKeepAlive) assert.deepEqual([p.pid, p.hostname, typeof p.time], [s.child.pid, event.hostname, 'number']);
      const expired = parsed.find((p) => p.event === 'call.keepAliveTimeout');
      assert.equal(expired?.callId, callId, 'the expiry names the call');
      assert.equal(expired?.requestId, undefined, 'no request caused it');
      // 'stopped' is the last line; a delivery to the unreachable callback still in flight when the
      // shutdown began may log its failure between 'stopping' and 'stopped'.
      const lifecycle = parsed.filter((p) => p.event === 'stopping' || p.event === 'stopped');
      assert.deepEqual(
        lifecycle.map((p) => p.event),
        ['stopping', 'stopped'],
      );
      assert.equal(parsed.at(-1)?.event, 'stopped');
      // The lifecycle lines carry the same base fields as pino's.
      const base = (p: LogLine | undefined) => [p?.pid, p?.hostname, p?.instance];
      for (const p of [parsed[0], ...lifecycle]) assert.deepEqual(base(p), base(event), `${p?.event} has the base fields`);
      assert.match(String(event.instance), new RegExp(`:${s.child.pid}$`));
      assert.match(s.stderr(), /Graph API\s+http:\/\/127\.0\.0\.1:\d+\/v1\.0/);
      assert.match(s.stderr(), /client secret/);
    } finally {
      s.child.kill('SIGKILL');
      dir.remove();
    }
  });

  test('a port in use: the message names the flag (or variable) to change', async () => {
    const busy = await listening();
    const tlsDir = tempDir();
    try {
      const http = await runCli(['serve', '--memory', '--no-https', '--port', String(busy.port)]);
      assert.equal(http.code, 2);
      assert.match(http.stderr, new RegExp(`^callkeeper: --port: 127\\.0\\.0\\.1:${busy.port} is already in use .*0 for a free one`));
      const https = await runCli(['serve', '--memory', '--port', '0', '--https-port', String(busy.port), '--tls-dir', tlsDir.path]);
      assert.equal(https.code, 2);
      assert.match(https.stderr, new RegExp(`^callkeeper: --https-port: 127\\.0\\.0\\.1:${busy.port} is already in use`));
      const env = await runCli(['serve', '--memory', '--no-https'], { env: { ...process.env, CALLKEEPER_PORT: String(busy.port) } });
      assert.match(env.stderr, /^callkeeper: CALLKEEPER_PORT \(flag --port\): .* is already in use/);
    } finally {
      busy.server.close();
      tlsDir.remove();
    }
  });
});
