import 'reflect-metadata';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkServerIdentity, createServer } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { wallTime } from '../src/clock/clock.js';
import { issueServerCert, loadCaKey, permittedNames } from '../src/tls/certificate-authority.js';
import { loadOrCreateTls } from '../src/tls/certificates.js';
import { ensurePrivateDir } from '../src/tls/private-dir.js';
import { runCli, spawnServe } from './cli-process.js';
import { tempDir } from './helpers.js';

/**
 * A real TLS handshake to 127.0.0.1:port trusting only `ca`, verifying the certificate for
 * `name` (a DNS name is sent as SNI; an IP is checked as the address the client dialled).
 */
function handshake(port: number, ca: string, name: string): Promise<number> {
  const ip = /^[\d.]+$|:/.test(name);
  return new Promise((resolve, reject) => {
    request(
      {
        host: '127.0.0.1',
        port,
        path: '/_callkeeper/health',
        ca,
        agent: false,
        ...(ip
          ? { checkServerIdentity: (_h: string, cert: Parameters<typeof checkServerIdentity>[1]) => checkServerIdentity(name, cert) }
          : { servername: name }),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    )
      .on('error', reject)
      .end();
  });
}

/** A plain TLS server presenting `cert`/`key` (for certificates forged with the CA's key). */
async function tlsServing(cert: string, key: string): Promise<{ port: number; close(): void }> {
  const server = createServer({ cert, key }, (socket) => {
    socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

describe('TLS for containers: --tls-san, a name-constrained CA, its key kept apart', () => {
  test('--tls-san names verify over real TLS, other names fail; the CA is constrained to exactly the names it signs for', async () => {
    const dir = tempDir();
    try {
      const args = [
        '--data',
        dir.path,
        '--ca-key-dir',
        join(dir.path, 'keys'),
        '--tls-san',
        'host.docker.internal',
        '--tls-san',
        'callkeeper',
      ];
      const p = await spawnServe([...args, '--tls-san', '10.20.30.40']);
      try {
        assert.ok(p.tlsBase && p.caPath, p.output());
        const ca = readFileSync(p.caPath, 'utf8');
        const port = Number(new URL(p.tlsBase).port);
        for (const name of ['host.docker.internal', 'callkeeper', 'localhost', '127.0.0.1', '10.20.30.40']) {
          assert.equal(await handshake(port, ca, name), 200, name);
        }
        await assert.rejects(handshake(port, ca, 'bot.test'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
        await assert.rejects(handshake(port, ca, '10.20.30.41'), /IP: 10\.20\.30\.41 is not in the cert's list/);
        assert.deepEqual(permittedNames(new x509.X509Certificate(ca))?.sort(), [
          '10.20.30.40',
          '127.0.0.1',
          '::1',
          'callkeeper',
          'host.docker.internal',
          'localhost',
        ]);
        assert.match(p.output(), /Names\s+localhost, 127\.0\.0\.1, ::1, host\.docker\.internal, callkeeper, 10\.20\.30\.40/);
      } finally {
        p.child.kill('SIGTERM');
        await p.exited;
      }

      // Fewer names: a new server certificate from the same CA (nothing to trust again).
      const caBefore = readFileSync(join(dir.path, 'tls', 'ca.crt'), 'utf8');
      const certBefore = readFileSync(join(dir.path, 'tls', 'server.crt'), 'utf8');
      const fewer = await spawnServe(args);
      try {
        assert.equal(readFileSync(join(dir.path, 'tls', 'ca.crt'), 'utf8'), caBefore, 'the same CA');
        assert.notEqual(readFileSync(join(dir.path, 'tls', 'server.crt'), 'utf8'), certBefore, 'a new certificate');
        assert.doesNotMatch(fewer.output(), /A NEW local CA/);
        const port = Number(new URL(fewer.tlsBase ?? '').port);
        await assert.rejects(handshake(port, caBefore, '10.20.30.40'), /is not in the cert's list/);
        assert.equal(await handshake(port, caBefore, 'callkeeper'), 200);
      } finally {
        fewer.child.kill('SIGTERM');
        await fewer.exited;
      }

      // A name outside the CA's constraints: a new CA (constrained to the old names and the new one).
      const more = await spawnServe([...args, '--tls-san', 'bot']);
      try {
        const ca = readFileSync(join(dir.path, 'tls', 'ca.crt'), 'utf8');
        assert.notEqual(ca, caBefore);
        assert.match(more.output(), /A NEW local CA was made/);
        assert.ok(permittedNames(new x509.X509Certificate(ca))?.includes('10.20.30.40'), 'old names stay permitted');
        assert.equal(await handshake(Number(new URL(more.tlsBase ?? '').port), ca, 'bot'), 200);
      } finally {
        more.child.kill('SIGTERM');
        await more.exited;
      }
    } finally {
      dir.remove();
    }
  });

  test("Node's TLS refuses a certificate the CA signed for a name outside its constraints", async () => {
    const dir = tempDir();
    try {
      const now = wallTime();
      const local = await loadOrCreateTls(join(dir.path, 'tls'), now, { sans: ['host.docker.internal'], caKeyDir: join(dir.path, 'keys') });
      const ca = new x509.X509Certificate(local.caCert);
      const caKey = await loadCaKey(local.caKeyPath);
      // Control: a certificate the CA signs for a permitted name (a subdomain counts) is accepted.
      const inside = await issueServerCert(ca, caKey, now, ['api.host.docker.internal']);
      const ok = await tlsServing(inside.cert, inside.key);
      try {
        assert.equal(await handshake(ok.port, local.caCert, 'api.host.docker.internal'), 200);
      } finally {
        ok.close();
      }
      for (const names of [['login.microsoftonline.com'], ['10.0.0.1'], ['localhost', 'graph.microsoft.com']]) {
        const forged = await issueServerCert(ca, caKey, now, names);
        const s = await tlsServing(forged.cert, forged.key);
        try {
          await assert.rejects(handshake(s.port, local.caCert, names.at(-1) as string), (err: NodeJS.ErrnoException) => {
            assert.match(`${err.code} ${err.message}`, /PERMITTED|subtree|name constraint/i, `${names}: ${err.code} ${err.message}`);
            return true;
          });
        } finally {
          s.close();
        }
      }
    } finally {
      dir.remove();
    }
  });

  test('the CA key is kept apart from the served material; key files 0600, directories 0700', async () => {
    const dir = tempDir();
    try {
      const tlsDir = join(dir.path, 'data', 'tls');
      const keyDir = join(dir.path, 'keys');
      const local = await loadOrCreateTls(tlsDir, wallTime(), { caKeyDir: keyDir });
      assert.deepEqual(readdirSync(tlsDir).sort(), ['ca.crt', 'server.crt', 'server.key']);
      assert.ok(local.caKeyPath.startsWith(keyDir), local.caKeyPath);
      const mode = (p: string) => statSync(p).mode & 0o777;
      assert.equal(mode(local.caKeyPath), 0o600);
      assert.equal(mode(join(tlsDir, 'server.key')), 0o600);
      assert.equal(mode(tlsDir), 0o700);
      assert.equal(mode(keyDir), 0o700);
      // An older layout (ca.key next to ca.crt) is moved out on the next start.
      const legacy = join(dir.path, 'legacy');
      const old = await loadOrCreateTls(legacy, wallTime(), { caKeyDir: join(dir.path, 'old-keys') });
      const { renameSync } = await import('node:fs');
      renameSync(old.caKeyPath, join(legacy, 'ca.key'));
      const again = await loadOrCreateTls(legacy, wallTime(), { caKeyDir: join(dir.path, 'old-keys') });
      assert.equal(existsSync(join(legacy, 'ca.key')), false);
      assert.equal(again.caCert, old.caCert, 'the same CA, its key moved');
      assert.equal(again.created.ca, false);
    } finally {
      dir.remove();
    }
  });

  test('a TLS directory that is a symlink, or belongs to someone else, is refused; a wide one is narrowed', async () => {
    const dir = tempDir();
    try {
      const real = join(dir.path, 'real');
      mkdirSync(real, { mode: 0o755 });
      const link = join(dir.path, 'link');
      symlinkSync(real, link);
      assert.throws(() => ensurePrivateDir(link), /not a directory of its own/);
      ensurePrivateDir(real);
      assert.equal(statSync(real).mode & 0o777, 0o700, 'narrowed to 0700');
      const { code, stderr } = await runCli(['serve', '--memory', '--port', '0', '--tls-dir', link]);
      assert.equal(code, 2);
      assert.match(stderr, /^callkeeper: --tls-dir: .*not a directory of its own/);
      if (process.getuid?.() === 0) {
        // As root we can hand a directory to another user, as an attacker on a shared /tmp would.
        const theirs = join(dir.path, 'theirs');
        mkdirSync(theirs, { mode: 0o700 });
        chownSync(theirs, 4242, 4242);
        assert.throws(() => ensurePrivateDir(theirs), /belongs to another user \(uid 4242/);
        const r = await runCli(['serve', '--memory', '--port', '0'], {
          env: { ...process.env, XDG_STATE_HOME: dir.path, CALLKEEPER_TLS_DIR: theirs },
        });
        assert.match(r.stderr, /^callkeeper: CALLKEEPER_TLS_DIR \(flag --tls-dir\): .*belongs to another user/);
      }
    } finally {
      dir.remove();
    }
  });

  test('--memory keeps its TLS material in a per-user directory, not a shared fixed one', async () => {
    const dir = tempDir();
    try {
      const env = { ...process.env, XDG_STATE_HOME: join(dir.path, 'state') };
      const p = await spawnServe(['--memory'], undefined, env);
      try {
        assert.equal(p.caPath, join(dir.path, 'state', 'callkeeper', 'tls', 'ca.crt'));
        assert.equal(statSync(join(dir.path, 'state', 'callkeeper', 'tls')).mode & 0o777, 0o700);
        assert.match(p.output(), new RegExp(`CA key\\s+${join(dir.path, 'state', 'callkeeper', 'ca-keys')}/[0-9a-f]+\\.key`));
      } finally {
        p.child.kill('SIGTERM');
        await p.exited;
      }
    } finally {
      dir.remove();
    }
  });
});

describe('a start serves the files as they are only when they still hold (node:crypto, no @peculiar/x509)', () => {
  const DAY = 24 * 3600_000;
  const start = (dir: string, now: number, sans: string[] = []) =>
    loadOrCreateTls(join(dir, 'tls'), now, { caKeyDir: join(dir, 'keys'), sans });

  test('the same names, in time: the same CA, certificate and key; other names, another key, a damaged file, renewal time: a new certificate', async () => {
    const dir = tempDir('callkeeper-tls-reuse-');
    try {
      const now = wallTime();
      const first = await start(dir.path, now, ['api.test']);
      const again = await start(dir.path, now + DAY, ['API.test']);
      assert.deepEqual(again.created, { ca: false, cert: false });
      assert.equal(again.cert, first.cert);
      assert.equal(again.key, first.key);
      assert.equal(again.caCert, first.caCert);
      assert.deepEqual(again.names, first.names);

      // Fewer names: the certificate must not carry one no longer asked for.
      const fewer = await start(dir.path, now, []);
      assert.deepEqual(fewer.created, { ca: false, cert: true });
      assert.doesNotMatch(
        new x509.X509Certificate(fewer.cert)
          .getExtension(x509.SubjectAlternativeNameExtension)
          ?.names.toJSON()
          .map((n) => n.value)
          .join() ?? '',
        /api\.test/,
      );

      // A key that is not the certificate's (a crash between the two writes).
      const other = await start(tempDir('callkeeper-tls-other-').path, now);
      writeFileSync(join(dir.path, 'tls', 'server.key'), other.key);
      const rekeyed = await start(dir.path, now);
      assert.equal(rekeyed.created.cert, true);
      assert.notEqual(rekeyed.cert, fewer.cert);

      // A damaged certificate file is replaced, not served and not fatal.
      writeFileSync(join(dir.path, 'tls', 'server.crt'), 'not a certificate');
      const repaired = await start(dir.path, now);
      assert.equal(repaired.created.cert, true);
      new x509.X509Certificate(repaired.cert);

      // 30 days before the certificate's end (397 days), it is renewed by the same CA.
      const late = await start(dir.path, now + 370 * DAY);
      assert.deepEqual(late.created, { ca: false, cert: true });
      assert.equal(late.caCert, first.caCert);
    } finally {
      dir.remove();
    }
  });

  test('a certificate the CA did not issue is not served, even for the same names', async () => {
    const dir = tempDir('callkeeper-tls-issuer-');
    const elsewhere = tempDir('callkeeper-tls-elsewhere-');
    try {
      const now = wallTime();
      const mine = await start(dir.path, now);
      const theirs = await start(elsewhere.path, now);
      writeFileSync(join(dir.path, 'tls', 'server.crt'), theirs.cert);
      writeFileSync(join(dir.path, 'tls', 'server.key'), theirs.key);
      const next = await start(dir.path, now);
      assert.deepEqual(next.created, { ca: false, cert: true });
      assert.notEqual(next.cert, theirs.cert);
      assert.equal(next.caCert, mine.caCert);
    } finally {
      dir.remove();
      elsewhere.remove();
    }
  });
});
