// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, webcrypto, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, id_ce_nameConstraints, NameConstraints } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { caKeyFile, canonicalName, DAY, RENEW_BEFORE, type TlsMaterial } from './certificates.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** Browsers and Apple clients refuse server certificates valid longer than 398 days. */
const SERVER_DAYS = 397;
/** A development CA: name-constrained, and short enough that a forgotten one goes away (docs/decisions.md). */
const CA_DAYS = 3 * 365;

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

/**
 * What loadOrCreateTls does when the files on disk cannot be served as they are: reads them with
 * @peculiar/x509 (the CA's name constraints), and makes a new CA or server certificate as needed.
 * In a module of its own, loaded only then: the library costs 0.2 s of CPU to load.
 */
export async function loadOrCreateLocked(dir: string, keyDir: string, now: number, names: string[]): Promise<TlsMaterial> {
  const paths = {
    caCert: join(dir, 'ca.crt'),
    legacyCaKey: join(dir, 'ca.key'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
  };
  const created = { ca: false, cert: false };
  let caPem = existsSync(paths.caCert) ? readFileSync(paths.caCert, 'utf8') : undefined;
  let caKeyPath = caPem ? caKeyFile(keyDir, new Uint8Array(x509.PemConverter.decode(caPem)[0] ?? new ArrayBuffer(0))) : '';
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
    caKeyPath = caKeyFile(keyDir, new Uint8Array(x509.PemConverter.decode(caPem)[0] ?? new ArrayBuffer(0)));
    writeAtomically(caKeyPath, await pemKey(caKey), 0o600);
    writeAtomically(paths.caCert, caPem, 0o644);
    created.ca = true;
  }
  const caText = caPem as string;
  if (!created.ca && existsSync(paths.cert) && existsSync(paths.key)) {
    const current = readCertificate(paths.cert);
    const key = readFileSync(paths.key, 'utf8');
    if (
      current &&
      certificateNames(current).join(' ') === [...names].sort().join(' ') &&
      current.notAfter.getTime() - now > RENEW_BEFORE &&
      issuedBy(current, caText) &&
      matches(current, key)
    ) {
      return { caCert: caText, caPath: paths.caCert, cert: current.toString('pem'), key, caKeyPath, names, created };
    }
  }
  const server = await issueServerCert(ca, caKey, now, names);
  writeAtomically(paths.key, server.key, 0o600);
  writeAtomically(paths.cert, server.cert, 0o644);
  created.cert = true;
  return { caCert: caText, caPath: paths.caCert, ...server, caKeyPath, names, created };
}

/** The certificate in `path`, or undefined when the file is not one (it is then replaced). */
function readCertificate(path: string): x509.X509Certificate | undefined {
  try {
    return new x509.X509Certificate(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Whether the CA signed `cert`: its issuer name alone would take another CA of the same name. */
function issuedBy(cert: x509.X509Certificate, caPem: string): boolean {
  try {
    const ca = new X509Certificate(caPem);
    const own = new X509Certificate(cert.toString('pem'));
    return own.checkIssued(ca) && own.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** Reads a CA key back (tests forge certificates with it to check the constraints hold). */
export async function loadCaKey(path: string): Promise<CryptoKey> {
  return importKey(readFileSync(path, 'utf8'));
}
