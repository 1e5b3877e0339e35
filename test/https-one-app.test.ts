import assert from 'node:assert/strict';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { wallTime } from '../src/clock/clock.js';
import type { ConnectionLimits } from '../src/http/app.js';
import { loadOrCreateTls } from '../src/tls/certificates.js';
import { callBody, startServer, type TestServer, tempDir } from './helpers.js';

// One app serves http and https (src/http/tls-listener.ts): the https listener must behave as
// the https app it replaced did: its own scheme in URLs, the same limits, closed by close().

interface Served {
  s: TestServer;
  https: string;
  ca: string;
  close(): Promise<void>;
}

async function serveBoth(limits?: ConnectionLimits): Promise<Served> {
  const dir = tempDir();
  const tls = await loadOrCreateTls(join(dir.path, 'tls'), wallTime(), { caKeyDir: join(dir.path, 'ca-keys') });
  const s = await startServer({ tls: { cert: tls.cert, key: tls.key }, ...(limits ? { limits } : {}) });
  const https = await s.ck.listenTls('127.0.0.1', 0);
  return {
    s,
    https,
    ca: tls.caCert,
    async close() {
      await s.close();
      dir.remove();
    },
  };
}

/** A request over https trusting only the local CA. */
function httpsRequest(
  url: string,
  ca: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers ?? {}, ca, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** A raw TLS connection; `closed` resolves with what the server sent before closing it. */
function tlsSocket(port: number): { socket: TLSSocket; secure: Promise<boolean>; closed: Promise<string> } {
  const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  let got = '';
  socket.setEncoding('utf8');
  socket.on('data', (c: string) => {
    got += c;
  });
  socket.on('error', () => {});
  const secure = new Promise<boolean>((resolve) => {
    socket.once('secureConnect', () => resolve(true));
    socket.once('close', () => resolve(false));
  });
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(got)));
  return { socket, secure, closed };
}

describe('http and https from one app', () => {
  let b: Served;
  before(async () => {
    b = await serveBoth();
  });
  after(() => b.close());

  test('each scheme sees itself in Location and @odata.context, over the same calls', async () => {
    const token = await b.s.token();
    const created = await httpsRequest(`${b.https}/v1.0/communications/calls`, b.ca, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(callBody()),
    });
    assert.equal(created.status, 201, created.body);
    const { id } = JSON.parse(created.body) as { id: string };
    assert.equal(created.headers.location, `${b.https}/v1.0/communications/calls/${id}`);
    assert.ok(b.https.startsWith('https://127.0.0.1:'));
    const overHttp = await b.s.graph(`/v1.0/communications/calls/${id}`);
    assert.equal(overHttp.status, 200);
    assert.equal(
      ((await overHttp.json()) as { '@odata.context': string })['@odata.context'],
      `${b.s.base}/v1.0/$metadata#communications/calls/$entity`,
    );
    const overHttps = await httpsRequest(`${b.https}/v1.0/communications/calls/${id}`, b.ca, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(
      (JSON.parse(overHttps.body) as { '@odata.context': string })['@odata.context'],
      `${b.https}/v1.0/$metadata#communications/calls/$entity`,
    );
    // The same hooks: wire headers and the journal see https requests too.
    assert.ok(overHttps.headers['request-id']);
    assert.equal(overHttps.headers['strict-transport-security'], 'max-age=31536000');
    const journal = (await (await fetch(`${b.s.base}/_callkeeper/requests`)).json()) as { value: { requestId: string }[] };
    assert.ok(journal.value.some((e) => e.requestId === overHttps.headers['request-id']));
  });

  test('a plain-http request to the https port is refused, and https to the http port too', async () => {
    const port = new URL(b.https).port;
    await assert.rejects(fetch(`http://127.0.0.1:${port}/_callkeeper/health`).then((r) => r.text()));
    await assert.rejects(httpsRequest(`https://127.0.0.1:${new URL(b.s.base).port}/_callkeeper/health`, b.ca));
  });
});

describe('the https listener keeps the limits', () => {
  test('headers that never end are cut off with a 408; an idle keep-alive connection is closed', { timeout: 60_000 }, async () => {
    const b = await serveBoth({
      headersTimeoutMs: 500,
      requestTimeoutMs: 1_000,
      keepAliveTimeoutMs: 300,
      idleSocketTimeoutMs: 60_000,
      maxConnections: 100,
    });
    try {
      const port = Number(new URL(b.https).port);
      const slow = tlsSocket(port);
      assert.equal(await slow.secure, true);
      slow.socket.write('GET /_callkeeper/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a');
      const timer = setInterval(() => slow.socket.writable && slow.socket.write('b'), 50);
      const answer = await slow.closed;
      clearInterval(timer);
      assert.match(answer, /^HTTP\/1\.1 408 /);
      const idle = tlsSocket(port);
      assert.equal(await idle.secure, true);
      idle.socket.write('GET /_callkeeper/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const got = await idle.closed;
      assert.match(got, /^HTTP\/1\.1 200 /);
      assert.match(got, /keep-alive/i);
    } finally {
      await b.close();
    }
  });

  test('connections beyond the cap are closed as they arrive; once others leave, new ones are served', { timeout: 60_000 }, async () => {
    const b = await serveBoth({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 10_000,
      keepAliveTimeoutMs: 60_000,
      idleSocketTimeoutMs: 60_000,
      maxConnections: 3,
    });
    try {
      const port = Number(new URL(b.https).port);
      const held = [tlsSocket(port), tlsSocket(port), tlsSocket(port)];
      for (const h of held) assert.equal(await h.secure, true);
      const beyond = tlsSocket(port);
      assert.equal(await beyond.secure, false, 'the fourth connection is closed');
      for (const h of held) h.socket.destroy();
      await Promise.all(held.map((h) => h.closed));
      // The server counts a connection gone once it sees the close: ask until it has.
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = await httpsRequest(`${b.https}/_callkeeper/health`, b.ca).then(
          (r) => r.status,
          () => 0,
        );
      }
      assert.equal(status, 200);
    } finally {
      await b.close();
    }
  });

  test('close() closes the https listener too, idle keep-alive connections included', { timeout: 60_000 }, async () => {
    const b = await serveBoth();
    const port = Number(new URL(b.https).port);
    const idle = tlsSocket(port);
    assert.equal(await idle.secure, true);
    idle.socket.write('GET /_callkeeper/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await new Promise((resolve) => idle.socket.once('data', resolve));
    // Resolves although the client keeps its connection: close() ends idle ones (the test's timeout is the bound).
    await b.close();
    await idle.closed;
    const after = tlsSocket(port);
    assert.equal(await after.secure, false, 'nothing listens any more');
  });
});
