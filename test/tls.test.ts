import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { wallTime } from '../src/clock/clock.js';
import { loadOrCreateTls } from '../src/tls/certificates.js';
import { spawnServe } from './cli-process.js';
import { tempDir } from './helpers.js';

/** GET over https trusting only `ca`, to `host` (the certificate must name it). */
function getTrusting(url: string, ca: string, host: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    request(
      { host, port: u.port, path: u.pathname, ca, servername: host === '::1' ? undefined : host, family: host === '::1' ? 6 : 4 },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    )
      .on('error', reject)
      .end();
  });
}

describe('https', () => {
  test('serve creates a local CA and a certificate for localhost, 127.0.0.1 and ::1, prints how to trust it, and reuses them', async () => {
    const dir = tempDir();
    try {
      const first = await spawnServe(['--data', dir.path, '--host', '::', '--log-level', 'warn']);
      assert.ok(first.tlsBase && first.caPath, first.output());
      assert.equal(first.caPath, join(dir.path, 'tls', 'ca.crt'));
      assert.match(first.output(), /REQUESTS_CA_BUNDLE=/);
      const ca = readFileSync(first.caPath, 'utf8');
      const port = new URL(first.tlsBase.replace('[::]', 'localhost')).port;
      for (const host of ['localhost', '127.0.0.1', '::1']) {
        const res = await getTrusting(`https://x:${port}/_callkeeper/health`, ca, host);
        assert.equal(res.status, 200, host);
      }
      first.child.kill('SIGTERM');
      await first.exited;
      const cert = readFileSync(join(dir.path, 'tls', 'server.crt'), 'utf8');
      const second = await spawnServe(['--data', dir.path]);
      try {
        assert.equal(readFileSync(join(dir.path, 'tls', 'ca.crt'), 'utf8'), ca, 'the CA is reused');
        assert.equal(readFileSync(join(dir.path, 'tls', 'server.crt'), 'utf8'), cert, 'the certificate is reused');
        const res = await getTrusting(`${second.tlsBase}/_callkeeper/health`, ca, '127.0.0.1');
        assert.equal(res.status, 200);
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    } finally {
      dir.remove();
    }
  });

  test('an untrusted client is refused: the CA is what makes it work', async () => {
    const dir = tempDir();
    try {
      const p = await spawnServe(['--data', dir.path]);
      try {
        await assert.rejects(fetch(`${p.tlsBase}/_callkeeper/health`));
      } finally {
        p.child.kill('SIGTERM');
        await p.exited;
      }
    } finally {
      dir.remove();
    }
  });

  test('--cert/--key serve the user’s own certificate; --no-https serves http only', async () => {
    const dir = tempDir();
    try {
      const own = await loadOrCreateTls(join(dir.path, 'mine'), wallTime());
      writeFileSync(join(dir.path, 'c.pem'), own.cert);
      writeFileSync(join(dir.path, 'k.pem'), own.key);
      const p = await spawnServe(['--memory', '--cert', join(dir.path, 'c.pem'), '--key', join(dir.path, 'k.pem')]);
      try {
        assert.equal(p.caPath, undefined, 'no trust line for a certificate callkeeper did not make');
        const res = await getTrusting(`${p.tlsBase}/_callkeeper/health`, own.caCert, '127.0.0.1');
        assert.equal(res.status, 200);
      } finally {
        p.child.kill('SIGTERM');
        await p.exited;
      }
      const plain = await spawnServe(['--memory', '--no-https']);
      assert.equal(plain.tlsBase, undefined);
      plain.child.kill('SIGTERM');
      await plain.exited;
    } finally {
      dir.remove();
    }
  });
});
