/**
 * The verified-token cache (auth/token-verifier.ts): a cached token costs no signature check,
 * yet still stops working at exp (plus Microsoft's 5 minutes of skew) and when revoked, and no
 * other header rides on a cached one. Wall time is a ManualClock: nothing waits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { AppRegistry, DEFAULT_APP } from '../src/auth/apps.js';
import type { SigningKey } from '../src/auth/signing-key.js';
import { TokenIssuer } from '../src/auth/token-issuer.js';
import { TOKEN_CLOCK_SKEW_S, TokenRevocations } from '../src/auth/token-lifetime.js';
import { TokenVerifier } from '../src/auth/token-verifier.js';
import { ManualClock } from '../src/clock/clock.js';
import { GraphError } from '../src/errors/graph-errors.js';

const LIFETIME_S = 3600;

async function setup() {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const key: SigningKey = { kid: await calculateJwkThumbprint(publicJwk), privateKey, publicKey, publicJwk };
  const wall = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const revocations = new TokenRevocations();
  const issuer = new TokenIssuer(key, { wallTime: () => wall.now(), lifetimeS: LIFETIME_S, revocations });
  const verifier = new TokenVerifier(key, new AppRegistry([DEFAULT_APP]), { wallTime: () => wall.now(), revocations });
  const token = (await issuer.issue(DEFAULT_APP)).access_token;
  return { wall, issuer, verifier, token };
}

async function refusal(p: Promise<unknown>): Promise<GraphError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GraphError, String(err));
    return err;
  }
  assert.fail('the token was accepted');
}

describe('verified-token cache', () => {
  test('a cached token is accepted without a signature check until exp + 5 min skew, then refused as expired', async () => {
    const { wall, verifier, token } = await setup();
    const header = `Bearer ${token}`;
    assert.equal((await verifier.verify(header)).appId, DEFAULT_APP.clientId);
    const checks = verifier.signatureChecks;
    wall.advance(LIFETIME_S * 1000 + TOKEN_CLOCK_SKEW_S * 1000 - 1);
    assert.equal((await verifier.verify(header)).appId, DEFAULT_APP.clientId, 'still inside the skew');
    assert.equal(verifier.signatureChecks, checks, 'served from the cache');
    wall.advance(1);
    const err = await refusal(verifier.verify(header));
    assert.equal(err.status, 401);
    assert.equal(err.message, 'Lifetime validation failed, the token is expired.');
    // Refused again, now by the signature check (the entry was dropped): still expired, never accepted.
    assert.equal((await refusal(verifier.verify(header))).status, 401);
    assert.equal(verifier.signatureChecks, checks + 1);
  });

  test('a cached token is refused once its tokens are expired (revoked); a new one is accepted', async () => {
    const { wall, issuer, verifier, token } = await setup();
    await verifier.verify(`Bearer ${token}`);
    issuer.expireIssued();
    assert.equal((await refusal(verifier.verify(`Bearer ${token}`))).status, 401);
    wall.advance(1_000);
    const fresh = (await issuer.issue(DEFAULT_APP)).access_token;
    assert.equal((await verifier.verify(`Bearer ${fresh}`)).appId, DEFAULT_APP.clientId);
  });

  test('a header that ends like a cached one but differs is checked in full, and refused', async () => {
    const { verifier, token } = await setup();
    await verifier.verify(`Bearer ${token}`);
    const checks = verifier.signatureChecks;
    // Same signature (the cache key's tail), another payload: a forgery the cache must not pass.
    const [h, p, sig] = token.split('.') as [string, string, string];
    const forged = `${h}.${p.slice(0, -2)}${p.endsWith('A') ? 'B' : 'A'}${p.slice(-1)}.${sig}`;
    assert.equal((await refusal(verifier.verify(`Bearer ${forged}`))).status, 401);
    assert.equal(verifier.signatureChecks, checks + 1, 'the forged header was verified, not served from the cache');
    // Other spellings of the same token are verified once each, and accepted.
    assert.equal((await verifier.verify(`bearer ${token}`)).appId, DEFAULT_APP.clientId);
    assert.equal((await verifier.verify(`Bearer  ${token}`)).appId, DEFAULT_APP.clientId);
    assert.equal((await verifier.verify(`Bearer ${token}`)).appId, DEFAULT_APP.clientId);
    assert.equal((await refusal(verifier.verify(`Bearer ${token} x`))).status, 401);
    assert.equal((await refusal(verifier.verify('Basic abc'))).status, 401);
  });
});
