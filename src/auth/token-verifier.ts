import { type JWTPayload, errors as joseErrors, jwtVerify } from 'jose';
import { bearerChallenge, GraphError, graphErrors } from '../errors/graph-errors.js';
import type { AppRegistry } from './apps.js';
import { audiencesOf, type Cloud, GLOBAL } from './clouds.js';
import type { SigningKey } from './signing-key.js';
import { TOKEN_CLOCK_SKEW_S, TokenRevocations } from './token-lifetime.js';

/** Who is calling, as read from a verified token. */
export interface Principal {
  appId: string;
  tenantId: string;
  roles: readonly string[];
  /** "app" for app-only tokens; anything else is a delegated (user) token. */
  idtyp: string;
}

interface Cached {
  /** The whole Authorization header it was verified from. */
  header: string;
  principal: Principal;
  /** `iat`, whole seconds. */
  issuedAtS: number;
  /** nbf and exp, wall-clock epoch ms. */
  notBefore: number;
  expires: number;
}

const CACHE_LIMIT = 10_000;
const SKEW_MS = TOKEN_CLOCK_SKEW_S * 1000;
/**
 * The cache's key: the header's last characters (the token's signature). A Map hashes its whole
 * string key, and a header is a new 1.3 KB string on every request; the tail is cheap to hash,
 * and the whole header is compared to the cached one before it counts as a hit.
 */
const KEY_CHARS = 48;
const keyOf = (header: string) => header.slice(-KEY_CHARS);

export interface TokenVerifierOptions {
  /** The wall clock tokens live on (epoch ms); tests inject their own. */
  wallTime: () => number;
  /** Shared with the issuer; `POST /_callkeeper/tokens/expire` writes it. */
  revocations?: TokenRevocations;
  cloud?: Cloud;
}

/**
 * Checks `Authorization: Bearer` tokens against the wall clock, allowing Microsoft's 5 minutes
 * of skew (docs/decisions.md, "Time of tokens"). An RS256 verify costs tens of microseconds, too
 * much on every keepAlive, so a verified token is remembered (by the exact Authorization header
 * it came in): later requests with it cost one map lookup and one string comparison, no parse.
 * Lifetime and revocation are re-checked on every use; the cache holds at most CACHE_LIMIT
 * tokens (the oldest verified goes first).
 */
export class TokenVerifier {
  private readonly cache = new Map<string, Cached>();
  /** How many signatures were checked (cache misses); for tests and diagnostics. */
  signatureChecks = 0;
  readonly cloud: Cloud;
  private readonly wallTime: () => number;
  private readonly revocations: TokenRevocations;
  private readonly audiences: string[];
  private readonly challenge: Record<string, string>;

  constructor(
    private readonly key: SigningKey,
    private readonly apps: AppRegistry,
    options: TokenVerifierOptions,
  ) {
    this.cloud = options.cloud ?? GLOBAL;
    this.wallTime = options.wallTime;
    this.revocations = options.revocations ?? new TokenRevocations();
    this.audiences = audiencesOf(this.cloud);
    this.challenge = { 'www-authenticate': bearerChallenge(this.cloud.loginHost) };
  }

  async verify(authorization: string | undefined): Promise<Principal> {
    try {
      return this.cached(authorization) ?? (await this.check(authorization));
    } catch (err) {
      throw this.challenged(err);
    }
  }

  /**
   * The caller of a header verified before, its lifetime and revocation checked now; undefined
   * when it is not in the cache (then `verify`). Synchronous, so the authentication hook of a
   * request with a known token waits for nothing. Throws the 401 a cached token has come to.
   */
  cached(authorization: string | undefined): Principal | undefined {
    if (!authorization) return undefined;
    const key = keyOf(authorization);
    const entry = this.cache.get(key);
    if (entry?.header !== authorization) return undefined;
    try {
      return this.live(entry, key, this.wallTime());
    } catch (err) {
      throw this.challenged(err);
    }
  }

  /** The challenge names this cloud's authority. */
  private challenged(err: unknown): unknown {
    if (err instanceof GraphError && err.status === 401) return new GraphError(err.status, err.code, err.message, this.challenge);
    return err;
  }

  private async check(authorization: string | undefined): Promise<Principal> {
    if (!authorization) throw graphErrors.tokenMissing();
    const now = this.wallTime();
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    const token = match?.[1];
    if (!token) throw graphErrors.tokenMissing();
    const key = keyOf(authorization);
    const entry: Cached = { header: authorization, ...(await this.verifySignature(token, now)) };
    if (this.cache.size >= CACHE_LIMIT && !this.cache.has(key)) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(key, entry);
    return this.live(entry, key, now);
  }

  private live(entry: Cached, key: string, now: number): Principal {
    if (now >= entry.expires + SKEW_MS) {
      this.cache.delete(key);
      throw graphErrors.tokenExpired();
    }
    if (entry.issuedAtS < this.revocations.cutoffFor(entry.principal.appId)) throw graphErrors.tokenExpired();
    if (now < entry.notBefore - SKEW_MS) throw graphErrors.tokenNotYetValid();
    return entry.principal;
  }

  /** Signature, audience, issuer and app; lifetime is checked by the caller, cached or not. */
  private async verifySignature(token: string, now: number): Promise<Omit<Cached, 'header'>> {
    this.signatureChecks++;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key.publicKey, {
        algorithms: ['RS256'],
        audience: [...this.audiences],
        currentDate: new Date(now),
        clockTolerance: TOKEN_CLOCK_SKEW_S,
        requiredClaims: ['exp', 'tid', 'appid', 'iss'],
      }));
    } catch (err) {
      throw errorFor(err);
    }
    const tid = String(payload.tid);
    const appid = String(payload.appid);
    if (payload.iss !== this.cloud.issuer(tid)) throw graphErrors.tokenInvalid({ reason: 'Invalid issuer.' });
    await this.apps.ensure(appid);
    const app = this.apps.find(appid);
    if (!app || app.tenantId.toLowerCase() !== tid.toLowerCase()) {
      throw graphErrors.tokenInvalid({ reason: 'The application is not registered in this tenant.' });
    }
    const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
    const nbf = typeof payload.nbf === 'number' ? payload.nbf * 1000 : Number.NEGATIVE_INFINITY;
    return {
      principal: { appId: appid, tenantId: tid, roles, idtyp: typeof payload.idtyp === 'string' ? payload.idtyp : 'user' },
      issuedAtS: typeof payload.iat === 'number' ? payload.iat : nbf / 1000,
      notBefore: nbf,
      expires: (payload.exp ?? 0) * 1000,
    };
  }
}

function errorFor(err: unknown): GraphError {
  if (err instanceof joseErrors.JWTExpired) return graphErrors.tokenExpired();
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return graphErrors.tokenInvalid({ reason: 'Invalid audience.' });
    if (err.claim === 'nbf') return graphErrors.tokenNotYetValid();
    return graphErrors.tokenInvalid({ reason: `Invalid claim '${err.claim}'.` });
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return graphErrors.tokenInvalid({ reason: 'Invalid signature.' });
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    return graphErrors.tokenInvalid({ reason: 'Invalid signing algorithm; only RS256 is accepted.' });
  }
  return graphErrors.tokenInvalid({ reason: 'The token is malformed.' });
}
