// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { createHash, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, id_ce_nameConstraints, NameConstraints } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { withDirLock } from './dir-lock.js';
import { ensurePrivateDir, userStateDir } from './private-dir.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600_000;
/** Browsers and Apple clients refuse server certificates valid longer than 398 days. */
const SERVER_DAYS = 397;
/** A development CA: name-constrained, and short enough that a forgotten one goes away (docs/decisions.md). */
const CA_DAYS = 3 * 365;
/** Renew a certificate when it has less than this left. */
const RENEW_BEFORE = 30 * DAY;

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

function canonicalName(name: string): string {
  const n = name.trim().toLowerCase();
  // IPv6 in one spelling, so that "0:0::1" and "::1" compare equal.
  return isIP(n) === 6 ? new URL(`http://[${n}]`).hostname.slice(1, -1) : n;
}

const sanOf = (name: string): x509.JsonGeneralName => (isIP(name) ? { type: 'ip', value: name } : { type: 'dns', value: name });

function certificateNames(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return (ext?.names.toJSON() ?? []).map((n) => canonicalName(n.value)).sort();
}

/** RFC 5280 name constraints: the CA may only sign for these names (and subdomains of the DNS ones). */
function nameConstraints(names: readonly string[]): x509.Extension {
  const subtrees = names.map((n) => {
    const ip = isIP(n);
    const base = ip ? new GeneralName({ iPAddress: `${n}/${ip === 4 ? 32 : 128}` }) : new GeneralName({ dNSName: n });
    return new GeneralSubtree({ base });
  });
  const value = AsnConvert.serialize(new NameConstraints({ permittedSubtrees: new GeneralSubtrees(subtrees) }));
  return new x509.Extension(id_ce_nameConstraints, true, value);
}

/** The names a CA is constrained to; undefined when it is not constrained (an older callkeeper's CA). */
export function permittedNames(ca: x509.X509Certificate): string[] | undefined {
  const ext = ca.getExtension(id_ce_nameConstraints);
  if (!ext) return undefined;
  const nc = AsnConvert.parse(ext.value, NameConstraints);
  return Array.from(nc.permittedSubtrees ?? [], (s) =>
    s.base.dNSName !== undefined ? s.base.dNSName.toLowerCase() : canonicalName((s.base.iPAddress ?? '').replace(/\/\d+$/, '')),
  );
}

async function pemKey(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new Error('empty key PEM');
  return await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');
}

async function createCa(now: number, names: readonly string[]): Promise<{ cert: x509.X509Certificate; keys: CryptoKeyPair }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=callkeeper local CA ${new Date(now).toISOString().slice(0, 10)}, O=callkeeper development`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + CA_DAYS * DAY),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      nameConstraints(names),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

/** A certificate for `names`, signed by the CA (tests use it to forge certificates the constraints must refuse). */
export async function issueServerCert(
  ca: x509.X509Certificate,
  caKey: CryptoKey,
  now: number,
  names: readonly string[],
): Promise<{ cert: string; key: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names[0] ?? 'localhost'}, O=callkeeper`,
    issuer: ca.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(Math.min(now + SERVER_DAYS * DAY, ca.notAfter.getTime())),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map(sanOf)),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  return { cert: cert.toString('pem'), key: await pemKey(keys.privateKey) };
}

/** Written whole or not at all (temp file + rename), so a concurrent reader never sees half a PEM. */
function writeAtomically(path: string, content: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}

/** Whether `keyPem` is the private key of `cert` (a crash between writing the two leaves a mismatch). */
function matches(cert: x509.X509Certificate, keyPem: string): boolean {
  try {
    const spki = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
    return Buffer.from(cert.publicKey.rawData).equals(spki);
  } catch {
    return false;
  }
}

/** The CA key's file: named by the CA certificate's fingerprint, in the per-user key directory. */
function caKeyFile(keyDir: string, caPem: string): string {
  const der = x509.PemConverter.decode(caPem)[0] ?? new ArrayBuffer(0);
  return join(keyDir, `${createHash('sha256').update(new Uint8Array(der)).digest('hex').slice(0, 32)}.key`);
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
  return withDirLock(dir, () => loadOrCreateLocked(dir, keyDir, now, serverNames(options.sans ?? [])));
}

async function loadOrCreateLocked(dir: string, keyDir: string, now: number, names: string[]): Promise<TlsMaterial> {
  const paths = {
    caCert: join(dir, 'ca.crt'),
    legacyCaKey: join(dir, 'ca.key'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
  };
  const created = { ca: false, cert: false };
  let caPem = existsSync(paths.caCert) ? readFileSync(paths.caCert, 'utf8') : undefined;
  let caKeyPath = caPem ? caKeyFile(keyDir, caPem) : '';
  // An older callkeeper kept the CA key next to the served material: move it out.
  if (caPem && existsSync(paths.legacyCaKey)) {
    if (!existsSync(caKeyPath)) writeAtomically(caKeyPath, readFileSync(paths.legacyCaKey, 'utf8'), 0o600);
    rmSync(paths.legacyCaKey, { force: true });
  }
  let ca = caPem ? new x509.X509Certificate(caPem) : undefined;
  const permitted = ca ? permittedNames(ca) : undefined;
  const usable =
    ca &&
    existsSync(caKeyPath) &&
    permitted !== undefined &&
    names.every((n) => permitted.includes(n)) &&
    ca.notAfter.getTime() - now > RENEW_BEFORE;
  let caKey: CryptoKey;
  if (ca && usable) {
    caKey = await importKey(readFileSync(caKeyPath, 'utf8'));
  } else {
    // Keep the names the old CA allowed, so switching back does not need yet another CA.
    const all = [...new Set([...names, ...(permitted ?? [])])];
    const fresh = await createCa(now, all);
    ca = fresh.cert;
    caPem = fresh.cert.toString('pem');
    caKey = fresh.keys.privateKey;
    caKeyPath = caKeyFile(keyDir, caPem);
    writeAtomically(caKeyPath, await pemKey(caKey), 0o600);
    writeAtomically(paths.caCert, caPem, 0o644);
    created.ca = true;
  }
  const caText = caPem as string;
  if (!created.ca && existsSync(paths.cert) && existsSync(paths.key)) {
    const current = new x509.X509Certificate(readFileSync(paths.cert, 'utf8'));
    const sameNames = certificateNames(current).join(' ') === [...names].sort().join(' ');
    const key = readFileSync(paths.key, 'utf8');
    if (sameNames && current.notAfter.getTime() - now > RENEW_BEFORE && current.issuer === ca.subject && matches(current, key)) {
      return { caCert: caText, caPath: paths.caCert, cert: current.toString('pem'), key, caKeyPath, names, created };
    }
  }
  const server = await issueServerCert(ca, caKey, now, names);
  writeAtomically(paths.key, server.key, 0o600);
  writeAtomically(paths.cert, server.cert, 0o644);
  created.cert = true;
  return { caCert: caText, caPath: paths.caCert, ...server, caKeyPath, names, created };
}

/** Reads a CA key back (tests forge certificates with it to check the constraints hold). */
export async function loadCaKey(path: string): Promise<CryptoKey> {
  return importKey(readFileSync(path, 'utf8'));
}
