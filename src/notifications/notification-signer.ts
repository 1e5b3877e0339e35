import { SignJWT } from 'jose';
import { type KeyMaker, loadSigningKey, newKey, type SigningKey } from '../auth/signing-key.js';
import type { Clock } from '../clock/clock.js';
import type { CallStore } from '../store/call-store.js';

/** The issuer of notification tokens, as bots validate it (the AuthenticationProvider of microsoftgraph/microsoft-graph-comms-samples; docs/decisions.md). */
export const NOTIFICATION_ISSUER = 'https://api.botframework.com';
const LIFETIME_S = 3600;
/** Re-sign a cached token this long before it expires. */
const REFRESH_BEFORE_MS = 5 * 60_000;

/**
 * Signs the `Authorization: Bearer` token of notifications: audience = the bot's app id,
 * Graph's issuer, a tenant claim. One token per app and tenant is reused until near its
 * expiry (as the real service does), so a burst of notifications costs no RSA signing each.
 */
export class NotificationSigner {
  private readonly cache = new Map<string, { token: string; expires: number }>();
  private loaded: Promise<SigningKey> | undefined;

  private constructor(
    private readonly store: CallStore,
    private readonly clock: Clock,
    private readonly make: KeyMaker,
  ) {}

  /**
   * Its own key, kept in the store like the token signing key, so instances agree. Read (or
   * made: an RSA key costs 0.1 to 0.6 s of CPU) when first needed, not at start: a server
   * that never notifies a bot never pays for it.
   */
  static async load(store: CallStore, clock: Clock, make: KeyMaker = newKey): Promise<NotificationSigner> {
    return new NotificationSigner(store, clock, make);
  }

  /** The signing key, loaded from the store (or made there) on first use. */
  key(): Promise<SigningKey> {
    if (!this.loaded) {
      const loading = loadSigningKey(this.store, 'notification-signing-key', this.make);
      // A failed read (the store down) is tried again next time.
      loading.catch(() => {
        if (this.loaded === loading) this.loaded = undefined;
      });
      this.loaded = loading;
    }
    return this.loaded;
  }

  async tokenFor(appId: string, tenantId: string): Promise<string> {
    const now = this.clock.now();
    const cacheKey = `${appId}|${tenantId}`;
    const hit = this.cache.get(cacheKey);
    if (hit && hit.expires - REFRESH_BEFORE_MS > now) return hit.token;
    const iat = Math.floor(now / 1000);
    const key = await this.key();
    const token = await new SignJWT({ tid: tenantId, serviceurl: 'https://graph.microsoft.com' })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid })
      .setIssuer(NOTIFICATION_ISSUER)
      .setAudience(appId)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + LIFETIME_S)
      .sign(key.privateKey);
    this.cache.set(cacheKey, { token, expires: (iat + LIFETIME_S) * 1000 });
    return token;
  }
}
