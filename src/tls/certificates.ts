// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { ensurePrivateDir } from './private-dir.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600_000;
/** Browsers and Apple clients refuse server certificates valid longer than 398 days. */
const SERVER_DAYS = 397;
const CA_DAYS = 10 * 365;
/** Renew the server certificate when it has less than this left. */
const RENEW_BEFORE = 30 * DAY;

export interface TlsMaterial {
  /** PEM of the local certificate authority: what a client must trust. */
  caCert: string;
  /** Where that PEM is on disk, for NODE_EXTRA_CA_CERTS and friends. */
  caPath: string;
  cert: string;
  key: string;
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

async function createCa(now: number): Promise<{ cert: x509.X509Certificate; keys: CryptoKeyPair }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=callkeeper local CA, O=callkeeper',
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + CA_DAYS * DAY),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

/** The names every server certificate carries. */
export const BUILTIN_SANS = ['localhost', '127.0.0.1', '::1'] as const;

/** The certificate's names: the built-in ones, then the extra ones, without duplicates, lower-cased. */
export function serverNames(extra: readonly string[]): string[] {
  return [...new Set([...BUILTIN_SANS, ...extra.map((n) => n.trim().toLowerCase())])];
}

const generalName = (name: string): x509.JsonGeneralName => (isIP(name) ? { type: 'ip', value: name } : { type: 'dns', value: name });

/** The DNS names and IPs a certificate is for, in a comparable form. */
function certificateNames(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return (ext?.names.toJSON() ?? []).map((n) => n.value.toLowerCase()).sort();
}

async function createServerCert(
  ca: x509.X509Certificate,
  caKey: CryptoKey,
  now: number,
  names: readonly string[],
): Promise<{ cert: string; key: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=localhost, O=callkeeper',
    issuer: ca.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + SERVER_DAYS * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map(generalName)),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  return { cert: cert.toString('pem'), key: await pemKey(keys.privateKey) };
}

function writePrivate(path: string, pem: string): void {
  writeFileSync(path, pem, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/**
 * The local CA and a localhost server certificate in `dir`: created on first start, reused
 * afterwards (the server certificate is renewed, by the same CA, before it expires), so a
 * client told once to trust the CA keeps trusting callkeeper. `now` is wall-clock time.
 */
export async function loadOrCreateTls(dir: string, now: number, options: { sans?: readonly string[] } = {}): Promise<TlsMaterial> {
  ensurePrivateDir(dir);
  const names = serverNames(options.sans ?? []);
  const paths = { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
  let caPem: string;
  let caKey: CryptoKey;
  if (existsSync(paths.caCert) && existsSync(paths.caKey)) {
    caPem = readFileSync(paths.caCert, 'utf8');
    caKey = await importKey(readFileSync(paths.caKey, 'utf8'));
  } else {
    const ca = await createCa(now);
    caPem = ca.cert.toString('pem');
    caKey = ca.keys.privateKey;
    writePrivate(paths.caKey, await pemKey(caKey));
    writeFileSync(paths.caCert, caPem);
  }
  if (existsSync(paths.cert) && existsSync(paths.key)) {
    const current = new x509.X509Certificate(readFileSync(paths.cert, 'utf8'));
    const sameNames = certificateNames(current).join(' ') === [...names].sort().join(' ');
    if (sameNames && current.notAfter.getTime() - now > RENEW_BEFORE && current.issuer === new x509.X509Certificate(caPem).subject) {
      return { caCert: caPem, caPath: paths.caCert, cert: readFileSync(paths.cert, 'utf8'), key: readFileSync(paths.key, 'utf8') };
    }
  }
  const server = await createServerCert(new x509.X509Certificate(caPem), caKey, now, names);
  writePrivate(paths.key, server.key);
  writeFileSync(paths.cert, server.cert);
  return { caCert: caPem, caPath: paths.caCert, ...server };
}
