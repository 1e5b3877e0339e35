import { type JWTPayload, errors as joseErrors, jwtVerify } from 'jose';
import type { Clock } from '../clock/clock.js';
import { graphErrors } from '../errors/graph-errors.js';
import type { AppRegistry } from './apps.js';
import { audiencesOf, type Cloud, GLOBAL } from './clouds.js';
import type { SigningKey } from './signing-key.js';

/** Who is calling, as read from a verified token. */
export interface Principal {
  appId: string;
  tenantId: string;
  roles: readonly string[];
  /** "app" for app-only tokens; anything else is a delegated (user) token. */
  idtyp: string;
}

interface Cached {
  principal: Principal;
  notBefore: number;
  expires: number;
}

const CACHE_LIMIT = 10_000;

/**
 * Checks `Authorization: Bearer` tokens. An RS256 verify costs tens of microseconds, too much
 * on every keepAlive, so a verified token is remembered (by its exact text) until it expires:
 * later requests with it cost one map lookup. Expiry is re-checked against the clock each time.
 */
export class TokenVerifier {
  private readonly cache = new Map<string, Cached>();
  /** How many signatures were checked (cache misses); for tests and diagnostics. */
  signatureChecks = 0;

  constructor(
    private readonly key: SigningKey,
    private readonly apps: AppRegistry,
    private readonly clock: Clock,
    readonly cloud: Cloud = GLOBAL,
  ) {
    this.audiences = audiencesOf(cloud);
  }

  private readonly audiences: string[];

  async verify(authorization: string | undefined): Promise<Principal> {
    if (!authorization) throw graphErrors.tokenMissing();
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    const token = match?.[1];
    if (!token) throw graphErrors.tokenMissing();
    const now = this.clock.now();
    const hit = this.cache.get(token);
    if (hit) {
      if (now >= hit.expires) {
        this.cache.delete(token);
        throw graphErrors.tokenInvalid({ reason: 'Lifetime validation failed, the token is expired.' });
      }
      if (now >= hit.notBefore) return hit.principal;
    }
    const cached = await this.verifySignature(token, now);
    if (this.cache.size >= CACHE_LIMIT) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(token, cached);
    return cached.principal;
  }

  private async verifySignature(token: string, now: number): Promise<Cached> {
    this.signatureChecks++;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key.publicKey, {
        algorithms: ['RS256'],
        audience: [...this.audiences],
        currentDate: new Date(now),
        clockTolerance: 0,
        requiredClaims: ['exp', 'tid', 'appid', 'iss'],
      }));
    } catch (err) {
      throw graphErrors.tokenInvalid({ reason: reasonFor(err) });
    }
    const tid = String(payload.tid);
    const appid = String(payload.appid);
    if (payload.iss !== this.cloud.issuer(tid)) throw graphErrors.tokenInvalid({ reason: 'Invalid issuer.' });
    const app = this.apps.find(appid);
    if (!app || app.tenantId.toLowerCase() !== tid.toLowerCase()) {
      throw graphErrors.tokenInvalid({ reason: 'The application is not registered in this tenant.' });
    }
    const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
    return {
      principal: { appId: appid, tenantId: tid, roles, idtyp: typeof payload.idtyp === 'string' ? payload.idtyp : 'user' },
      notBefore: typeof payload.nbf === 'number' ? payload.nbf * 1000 : 0,
      expires: (payload.exp ?? 0) * 1000,
    };
  }
}

function reasonFor(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'Lifetime validation failed, the token is expired.';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return 'Invalid audience.';
    if (err.claim === 'nbf') return 'Lifetime validation failed, the token is not yet valid.';
    return `Invalid claim '${err.claim}'.`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'Invalid signature.';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'Invalid signing algorithm; only RS256 is accepted.';
  return 'The token is malformed.';
}
