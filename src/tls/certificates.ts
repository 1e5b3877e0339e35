import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { withDirLock } from './dir-lock.js';
import { ensurePrivateDir, userStateDir } from './private-dir.js';

export const DAY = 24 * 3600_000;
/** Renew a certificate when it has less than this left. */
export const RENEW_BEFORE = 30 * DAY;

/** The names every server certificate carries. */
export const BUILTIN_SANS = ['localhost', '127.0.0.1', '::1'] as const;

export interface TlsMaterial {
  /** PEM of the local certificate authority: what a client must trust. */
  caCert: string;
  /** Where that PEM is on disk, for NODE_EXTRA_CA_CERTS and friends. */
  caPath: string;
  cert: string;
  key: string;
  /** Where the CA's private key is (never in the TLS directory; never served). */
  caKeyPath: string;
  /** The names (DNS and IP) the server certificate is for. */
  names: string[];
  /** What changed on this start: a new CA must be trusted again; a new certificate needs nothing. */
  created: { ca: boolean; cert: boolean };
}

export interface TlsOptions {
  /** More DNS names or IP addresses for the server certificate (--tls-san). */
  sans?: readonly string[];
  /** Where CA keys are kept; default: <user state dir>/ca-keys (per user, outside any project). */
  caKeyDir?: string;
}

/** The certificate's names: the built-in ones, then the extra ones, without duplicates, lower-cased. */
export function serverNames(extra: readonly string[]): string[] {
  return [...new Set([...BUILTIN_SANS, ...extra.map(canonicalName)])];
}

export function canonicalName(name: string): string {
  const n = name.trim().toLowerCase();
  // IPv6 in one spelling, so that "0:0::1" and "::1" compare equal.
  return isIP(n) === 6 ? new URL(`http://[${n}]`).hostname.slice(1, -1) : n;
}

/** The CA key's file: named by the CA certificate's fingerprint (of its DER), in the per-user key directory. */
export function caKeyFile(keyDir: string, der: Uint8Array): string {
  return join(keyDir, `${createHash('sha256').update(der).digest('hex').slice(0, 32)}.key`);
}

export function defaultCaKeyDir(): string {
  return join(userStateDir(), 'ca-keys');
}

/**
 * The local CA and a server certificate in `dir`: created on first start, reused afterwards, so
 * a client told once to trust the CA keeps trusting callkeeper. The server certificate is
 * re-issued when it nears its end or when the names change (--tls-san). The CA is name
 * constrained to the names it signs for; a name outside them needs a new CA (constrained to the
 * old names and the new), which clients must trust again. `dir` holds what is served and what
 * clients trust (ca.crt, server.crt, server.key); the CA's private key lives apart, in a
 * per-user directory (`caKeyDir`), never in `dir`, never sent anywhere. `now` is wall-clock time.
 */
export async function loadOrCreateTls(dir: string, now: number, options: TlsOptions = {}): Promise<TlsMaterial> {
  ensurePrivateDir(dir);
  const keyDir = options.caKeyDir ?? defaultCaKeyDir();
  ensurePrivateDir(keyDir);
  const names = serverNames(options.sans ?? []);
  return withDirLock(dir, async () => {
    const served = servedAsTheyAre(dir, keyDir, now, names);
    if (served) return served;
    const { loadOrCreateLocked } = await import('./certificate-authority.js');
    return loadOrCreateLocked(dir, keyDir, now, names);
  });
}

/** DER of the nameConstraints extension's OID (2.5.29.30): 06 03 55 1d 1e. */
const NAME_CONSTRAINTS_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x1e]);

/**
 * The files on disk when they can be served with no change, read with node:crypto alone: a
 * constrained CA with its key in the key directory and time left, and a server certificate it
 * issued, for exactly `names`, with time left, whose key is the one beside it. Otherwise
 * undefined, and certificate-authority.ts decides what to make. The CA's permitted names are not
 * read here: the certificate is for `names` and issued by the CA, which signs only within them.
 */
function servedAsTheyAre(dir: string, keyDir: string, now: number, names: readonly string[]): TlsMaterial | undefined {
  const paths = {
    caCert: join(dir, 'ca.crt'),
    legacyCaKey: join(dir, 'ca.key'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
  };
  if (!existsSync(paths.caCert) || existsSync(paths.legacyCaKey) || !existsSync(paths.cert) || !existsSync(paths.key)) return undefined;
  try {
    const caCert = readFileSync(paths.caCert, 'utf8');
    const ca = new X509Certificate(caCert);
    const caKeyPath = caKeyFile(keyDir, ca.raw);
    if (!existsSync(caKeyPath) || !ca.raw.includes(NAME_CONSTRAINTS_OID) || Date.parse(ca.validTo) - now <= RENEW_BEFORE) return undefined;
    const cert = readFileSync(paths.cert, 'utf8');
    const key = readFileSync(paths.key, 'utf8');
    const server = new X509Certificate(cert);
    if (Date.parse(server.validTo) - now <= RENEW_BEFORE) return undefined;
    if (!server.checkIssued(ca) || !server.verify(ca.publicKey) || !server.checkPrivateKey(createPrivateKey(key))) return undefined;
    if (sanNames(server).join(' ') !== [...names].sort().join(' ')) return undefined;
    return { caCert, caPath: paths.caCert, cert, key, caKeyPath, names: [...names], created: { ca: false, cert: false } };
  } catch {
    // Unreadable or damaged files: certificate-authority.ts replaces them.
    return undefined;
  }
}

/** The DNS names and IP addresses of a certificate, canonical and sorted; undefined entries for other kinds. */
function sanNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter(Boolean)
    .map((entry) => {
      const m = /^(DNS|IP Address):(.*)$/.exec(entry);
      return m?.[2] !== undefined ? canonicalName(m[2]) : `unknown:${entry}`;
    })
    .sort();
}
