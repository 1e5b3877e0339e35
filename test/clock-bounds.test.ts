import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { type Clock, MAX_TIME_SCALE, MAX_VIRTUAL_TIME, ManualClock, ScaledClock } from '../src/clock/clock.js';
import { createCallkeeper } from '../src/server.js';
import { runCli } from './cli-process.js';
import { type GraphErrorBody, MINUTE, requestToken, startServer } from './helpers.js';

const DAY = 24 * 60 * MINUTE;

/** Sends raw bytes and reads until the server closes or a full response has arrived. */
function rawExchange(base: string, bytes: string): Promise<string> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname);
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => {
      out += c;
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(out));
    sock.write(bytes);
  });
}

const advance = (base: string, ms: unknown) =>
  fetch(`${base}/_callkeeper/clock/advance`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ms }),
  });

describe('virtual time is bounded', () => {
  test('advancing past the last supported date is a 400 naming it; time does not move; at the limit everything still answers', async () => {
    const s = await startServer({ clock: new ManualClock(MAX_VIRTUAL_TIME - 10 * DAY) });
    try {
      const res = await advance(s.base, '3650d');
      assert.equal(res.status, 400);
      const body = (await res.json()) as GraphErrorBody;
      assert.equal(body.error.code, 'BadRequest');
      assert.match(body.error.message, /past 9999-01-01T00:00:00\.000Z, the latest callkeeper supports/);
      assert.equal(s.clock.now(), MAX_VIRTUAL_TIME - 10 * DAY);
      // Up to the limit exactly is fine, and a call made there lives and ends normally.
      const id = await s.createCall();
      assert.equal((await advance(s.base, 10 * DAY - 1)).status, 200);
      assert.equal((await advance(s.base, 1)).status, 200);
      assert.equal(s.clock.now(), MAX_VIRTUAL_TIME);
      assert.equal((await advance(s.base, 1)).status, 400);
      assert.equal((await requestToken(s.base)).status, 200);
      const id2 = await s.createCall();
      assert.equal((await s.graph(`/v1.0/communications/calls/${id2}`)).status, 200);
      assert.equal((await s.graph(`/v1.0/communications/calls/${id}`)).status, 404, 'the first call timed out on the way');
      for (const path of ['/clock', '/calls', `/calls/${id2}`, '/health', '/notifications']) {
        assert.equal((await fetch(`${s.base}/_callkeeper${path}`)).status, 200, path);
      }
      const junk = await rawExchange(s.base, 'BAD\r\n\r\n');
      assert.match(junk, /^HTTP\/1\.1 400 /);
      assert.equal((await fetch(`${s.base}/_callkeeper/clock`)).status, 200, 'still serving');
    } finally {
      await s.close();
    }
  });

  test('{"ms": ""} and other non-durations are 400, not 500', async () => {
    const s = await startServer();
    try {
      for (const ms of ['', ' ', 'x'.repeat(500), '1e400', '-5m', '1.5ms', {}, [], true, 'Infinity']) {
        const res = await advance(s.base, ms);
        assert.equal(res.status, 400, JSON.stringify(ms));
      }
    } finally {
      await s.close();
    }
  });

  test('a scale above the maximum is refused; a fast clock left running stops at the last date instead of breaking', () => {
    assert.throws(() => new ScaledClock(1e300), /time scale must be a positive number up to 1000000/);
    assert.throws(() => new ScaledClock(MAX_TIME_SCALE + 1), RangeError);
    let wall = 0;
    const c = new ScaledClock(MAX_TIME_SCALE, () => wall, MAX_VIRTUAL_TIME - DAY);
    wall += DAY; // a day of wall time at this scale is 2,700 years of virtual time
    assert.equal(c.now(), MAX_VIRTUAL_TIME);
    assert.throws(() => c.advance(1), /past 9999-01-01/);
    assert.throws(() => new ManualClock(8.64e15), RangeError);
  });

  test('--time-scale 1e300 fails with a message, not a server that answers 500', async () => {
    const r = await runCli(['serve', '--memory', '--no-https', '--port', '0', '--time-scale', '1e300']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /time.scale/i);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  test('error handlers cannot throw: with a clock gone past any date, a malformed request is still answered and the process lives', async () => {
    // A clock a buggy or hostile embedder could pass in: past JavaScript's last date.
    const broken: Clock = { now: () => 9e15, setTimer: () => ({ cancel() {} }), advance() {}, scale: 0 };
    const ck = await createCallkeeper({ dataDir: undefined, logger: false, clock: broken });
    try {
      const base = await ck.listen('127.0.0.1', 0);
      for (let i = 0; i < 3; i++) {
        const junk = await rawExchange(base, 'BAD\r\n\r\n');
        assert.match(junk, /^HTTP\/1\.1 400 /);
      }
      const oversized = await rawExchange(base, `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      assert.match(oversized, /^HTTP\/1\.1 (431|414|400) /);
      const miss = await fetch(`${base}/nowhere`);
      assert.equal(miss.status, 404);
      const body = (await miss.json()) as GraphErrorBody;
      assert.equal(body.error.code, 'NotFound');
      const badJson = await fetch(`${base}/v1.0/communications/calls`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{',
      });
      assert.ok(badJson.status < 500, String(badJson.status));
      const token = await fetch(`${base}/${'t'}/oauth2/v2.0/token`, { method: 'POST' });
      assert.ok(token.status < 500, String(token.status));
    } finally {
      await ck.close();
    }
  });
});
