import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../clock/clock.js';
import type { AppRegistration } from './apps.js';
import { type Cloud, GLOBAL } from './clouds.js';
import type { SigningKey } from './signing-key.js';

/** Graph's token lifetime, as AAD answers it (FACTS.md §7). */
export const TOKEN_LIFETIME_S = 3599;

export interface TokenResponse {
  token_type: 'Bearer';
  expires_in: number;
  ext_expires_in: number;
  access_token: string;
}

/**
 * Issues app-only access tokens with the claims Graph sees in real ones. Lifetimes are in
 * virtual time, like everything else; expires_in is converted to wall seconds so that
 * clients' token caches refresh on time when the server runs faster than real time.
 */
export class TokenIssuer {
  constructor(
    private readonly key: SigningKey,
    private readonly clock: Clock,
  ) {}

  async issue(app: AppRegistration, cloud: Cloud = GLOBAL, extraClaims: Record<string, unknown> = {}): Promise<TokenResponse> {
    const now = Math.floor(this.clock.now() / 1000);
    const token = await new SignJWT({
      aud: cloud.graphResource,
      iss: cloud.issuer(app.tenantId),
      iat: now,
      nbf: now,
      exp: now + TOKEN_LIFETIME_S,
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
    const wallSeconds = this.clock.scale > 1 ? Math.max(1, Math.floor(TOKEN_LIFETIME_S / this.clock.scale)) : TOKEN_LIFETIME_S;
    return { token_type: 'Bearer', expires_in: wallSeconds, ext_expires_in: wallSeconds, access_token: token };
  }
}
