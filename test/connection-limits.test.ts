import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { startServer } from './helpers.js';

const openFds = () => readdirSync('/proc/self/fd').length;

interface Trickle {
  socket: Socket;
  /** What the server answered, if anything, before it closed the connection. */
  closed: Promise<string>;
}

/** A slow client: sends `head`, then one byte of `drip` every 50 ms until the server gives up on it. */
function trickle(port: number, head: string, drip: string): Trickle {
  const socket = connect(port, '127.0.0.1');
  let got = '';
  socket.setEncoding('utf8');
  socket.on('data', (c: string) => {
    got += c;
  });
  socket.on('error', () => {});
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  socket.on('connect', () => {
    socket.write(head);
    if (drip === '') return;
    timer = setInterval(() => {
      if (socket.writable) socket.write(drip[i++ % drip.length] ?? 'x');
    }, 50);
  });
  const closed = new Promise<string>((resolve) =>
    socket.on('close', () => {
      clearInterval(timer);
      resolve(got);
    }),
  );
  return { socket, closed };
}

test('slow clients (headers or body a byte at a time) are cut off by the timeouts, held to the cap, and new clients are served', {
  timeout: 60_000,
}, async () => {
  const limits = {
    headersTimeoutMs: 500,
    requestTimeoutMs: 1_000,
    keepAliveTimeoutMs: 1_000,
    idleSocketTimeoutMs: 5_000,
    maxConnections: 60,
  };
  const s = await startServer({ limits });
  try {
    const port = Number(new URL(s.base).port);
    const fdsBefore = openFds();
    let peak = 0;
    s.ck.app.server.on('connection', () => {
      s.ck.app.server.getConnections((_e, n) => {
        peak = Math.max(peak, n);
      });
    });
    const trickles: Trickle[] = [];
    for (let i = 0; i < 100; i++) {
      trickles.push(
        i % 2 === 0
          ? // Headers that never end.
            trickle(port, `GET /_callkeeper/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `, 'abcdefgh')
          : // Headers complete, then a body far slower than anyone sends.
            trickle(
              port,
              `POST /${DEFAULT_APP.tenantId}/oauth2/v2.0/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n`,
              'a=b&',
            ),
      );
    }
    // Every slow client is closed by the server; none is kept forever (the test's own timeout is the bound).
    const answers = await Promise.all(trickles.map((t) => t.closed));
    assert.ok(peak <= limits.maxConnections, `peak ${peak} connections, cap ${limits.maxConnections}`);
    const timedOut = answers.filter((a) => a.startsWith('HTTP/1.1 408'));
    assert.ok(timedOut.length > 0, `some slow clients get a 408 (answers: ${[...new Set(answers.map((a) => a.slice(0, 12)))]})`);
    for (const a of answers) assert.doesNotMatch(a, /^HTTP\/1\.1 5/);
    // And the server serves new clients, with its descriptors back to where they were.
    const results = await Promise.all(Array.from({ length: 20 }, () => fetch(`${s.base}/_callkeeper/health`).then((r) => r.status)));
    assert.deepEqual(new Set(results), new Set([200]));
    assert.ok(openFds() <= fdsBefore + 25, `fds ${fdsBefore} before, ${openFds()} after`);
  } finally {
    await s.close();
  }
});

test('an idle keep-alive connection is closed after the keep-alive timeout', { timeout: 60_000 }, async () => {
  const s = await startServer({
    limits: { headersTimeoutMs: 500, requestTimeoutMs: 1_000, keepAliveTimeoutMs: 300, idleSocketTimeoutMs: 60_000, maxConnections: 100 },
  });
  try {
    const port = Number(new URL(s.base).port);
    const t = trickle(port, 'GET /_callkeeper/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', '');
    t.socket.removeAllListeners('data');
    let got = '';
    t.socket.on('data', (c: string) => {
      got += c;
    });
    await t.closed;
    assert.match(got, /^HTTP\/1\.1 200 /);
    assert.match(got, /keep-alive/i);
  } finally {
    await s.close();
  }
});
