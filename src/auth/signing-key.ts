import { type CryptoKey, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { CallStore } from '../store/call-store.js';

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * The RS256 key that signs access tokens. Kept in the store, not in memory or a local file,
 * so tokens outlive a restart and every instance sharing a store accepts the others' tokens.
 */
export async function loadSigningKey(store: CallStore, name = 'token-signing-key'): Promise<SigningKey> {
  // Generating an RSA key costs hundreds of milliseconds: only on the very first start.
  let text = await store.getSetting(name);
  if (text === undefined) {
    const fresh = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
    // Another instance may have stored one meanwhile: whichever was first wins for all.
    text = await store.getOrInitSetting(name, JSON.stringify(await exportJWK(fresh.privateKey)));
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
