import { type CryptoKey, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { CallStore } from '../store/call-store.js';

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

/** Makes the private JWK of a signing key the store does not have yet. */
export type KeyMaker = (name: string) => Promise<JWK>;

/** A new RSA-2048 key: 0.1 to 0.6 s of CPU on a small machine. */
export const newKey: KeyMaker = async () =>
  exportJWK((await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 })).privateKey);

const madeInThisProcess = new Map<string, Promise<JWK>>();

/**
 * The keys of in-memory stores: made once per process and name, and shared by every in-memory
 * server the process starts (docs/decisions.md, "Signing keys of in-memory servers"), as Entra
 * and Graph sign with keys shared by all their endpoints. A test process starting dozens of
 * in-memory servers would otherwise spend a quarter of a second of CPU on each.
 */
export const processKey: KeyMaker = (name) => {
  let made = madeInThisProcess.get(name);
  if (!made) {
    made = newKey(name);
    made.catch(() => madeInThisProcess.delete(name));
    madeInThisProcess.set(name, made);
  }
  return made;
};

/**
 * The RS256 key that signs access tokens. Kept in the store, not in memory or a local file,
 * so tokens outlive a restart and every instance sharing a store accepts the others' tokens.
 * `make` makes it when the store has none: a new key, or (in-memory stores) the process's own.
 */
export async function loadSigningKey(store: CallStore, name = 'token-signing-key', make: KeyMaker = newKey): Promise<SigningKey> {
  // Generating an RSA key costs hundreds of milliseconds: only on the very first start.
  let text = await store.getSetting(name);
  if (text === undefined) {
    // Another instance may have stored one meanwhile: whichever was first wins for all.
    text = await store.getOrInitSetting(name, JSON.stringify(await make(name)));
  }
  const stored = JSON.parse(text) as JWK;
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = stored;
  const kid = await calculateJwkThumbprint(pub);
  const publicJwk: JWK = { ...pub, kid, use: 'sig', alg: 'RS256' };
  return {
    kid,
    privateKey: (await importJWK(stored, 'RS256')) as CryptoKey,
    publicKey: (await importJWK(pub, 'RS256')) as CryptoKey,
    publicJwk,
  };
}
