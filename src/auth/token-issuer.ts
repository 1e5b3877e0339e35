import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { AppRegistration } from './apps.js';
import { type Cloud, GLOBAL } from './clouds.js';
import type { SigningKey } from './signing-key.js';
import { checkTokenLifetime, DEFAULT_TOKEN_LIFETIME_S, TokenRevocations } from './token-lifetime.js';

export interface TokenIssuerOptions {
  /** The wall clock tokens live on (epoch ms); tests inject their own. */
  wallTime: () => number;
  /** `exp - iat` and `expires_in`, seconds (600 to 86400). */
  lifetimeS?: number;
  /** Shared with the verifiers: after an expire call, new tokens must be newer than the cutoff. */
  revocations?: TokenRevocations;
}

export interface TokenResponse {
  token_type: 'Bearer';
  expires_in: number;
  ext_expires_in: number;
  access_token: string;
}

/**
 * Issues app-only access tokens with the claims Graph sees in real ones. Their lifetime runs
 * on the wall clock, whatever the virtual clock does (docs/decisions.md, "Time of tokens"):
 * clients cache a token by their own clock and `expires_in`.
 */
export class TokenIssuer {
  readonly lifetimeS: number;
  readonly revocations: TokenRevocations;
  private readonly wallTime: () => number;

  constructor(
    private readonly key: SigningKey,
    options: TokenIssuerOptions,
  ) {
    this.wallTime = options.wallTime;
    this.lifetimeS = checkTokenLifetime(options.lifetimeS ?? DEFAULT_TOKEN_LIFETIME_S);
    this.revocations = options.revocations ?? new TokenRevocations();
  }

  /**
   * Every token issued until now (to `appId`, or to every app) is refused from now on with
   * Graph's expired message; tokens issued afterwards are good. Returns the cutoff (wall ms):
   * tokens whose iat is before it are expired.
   */
  expireIssued(appId?: string): number {
    return this.revocations.expireIssued(this.wallTime(), appId) * 1000;
  }

  async issue(app: AppRegistration, cloud: Cloud = GLOBAL, extraClaims: Record<string, unknown> = {}): Promise<TokenResponse> {
    const wallNow = this.wallTime();
    const now = Math.floor(wallNow / 1000);
    const iat = this.revocations.issuedAt(app.clientId, wallNow);
    const token = await new SignJWT({
      aud: cloud.graphResource,
      iss: cloud.issuer(app.tenantId),
      iat,
      nbf: now,
      exp: iat + this.lifetimeS,
      app_displayname: app.displayName,
      appid: app.clientId,
      appidacr: '1',
      idp: cloud.issuer(app.tenantId),
      idtyp: 'app',
      oid: app.clientId,
      roles: app.roles,
      sub: app.clientId,
      tid: app.tenantId,
      uti: randomUUID().replaceAll('-', ''),
      ver: '1.0',
      ...extraClaims,
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: this.key.kid })
      .sign(this.key.privateKey);
    return { token_type: 'Bearer', expires_in: this.lifetimeS, ext_expires_in: this.lifetimeS, access_token: token };
  }
}
