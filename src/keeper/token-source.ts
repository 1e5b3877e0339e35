import type { Clock } from '../clock/clock.js';

/** An access token with its expiry, shaped like @azure/identity's AccessToken. */
export interface AccessTokenLike {
  token: string;
  /** When the token expires, epoch ms (compared with the keeper's clock). */
  expiresOnTimestamp: number;
  /** When to get a new one (newer @azure/identity versions say); default: 5 minutes before expiry. */
  refreshAfterTimestamp?: number;
}

/**
 * Anything with @azure/identity's TokenCredential shape (ClientSecretCredential,
 * ManagedIdentityCredential, DefaultAzureCredential, ...). Duck-typed: no dependency on it.
 */
export interface TokenCredentialLike {
  getToken(scopes: string | string[]): Promise<AccessTokenLike | null>;
}

/**
 * A function that returns a token. Return a plain string when your function caches tokens
 * itself (the Graph client's `authProvider.getAccessToken` does): it is then called before
 * each request. Return `{ token, expiresOnTimestamp }` and the keeper caches it until shortly
 * before it expires.
 */
export type GetToken = () => Promise<string | AccessTokenLike>;

const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000;
/** After a failed refresh, a still-valid token is used this long before trying again. */
const REFRESH_RETRY_MS = 30_000;

/**
 * Hands out the bearer token for each request: caches tokens that carry an expiry, refreshes
 * them ahead of time, shares one refresh among all concurrent requests, and forgets a token
 * that Graph refused (401) so the next request gets a new one.
 */
export class TokenSource {
  private cached: AccessTokenLike | undefined;
  private refreshAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<string> | undefined;
  private holdOldUntil = Number.NEGATIVE_INFINITY;
  private failure: { error: unknown; until: number } | undefined;

  /**
   * @param holdAfterFailure how long (virtual ms) a failed token request is answered from memory
   *   before the endpoint is asked again: thousands of due calls must not each ask it.
   */
  constructor(
    private readonly fetchToken: GetToken,
    private readonly clock: Clock,
    private readonly holdAfterFailure: (error: unknown) => number = () => 0,
  ) {}

  static fromCredential(
    credential: TokenCredentialLike,
    scopes: string[],
    clock: Clock,
    holdAfterFailure?: (error: unknown) => number,
  ): TokenSource {
    return new TokenSource(
      async () => {
        const token = await credential.getToken(scopes);
        if (!token) throw new Error('the credential returned no token');
        return token;
      },
      clock,
      holdAfterFailure,
    );
  }

  async get(): Promise<string> {
    const now = this.clock.now();
    const c = this.cached;
    if (c && (now < this.refreshAt || (now < this.holdOldUntil && now < c.expiresOnTimestamp))) return c.token;
    if (this.failure && now < this.failure.until) throw this.failure.error;
    this.pending ??= this.refresh().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /** Graph answered 401 to `token`: do not use it again. */
  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  private async refresh(): Promise<string> {
    const old = this.cached;
    try {
      const got = await this.fetchToken();
      if (typeof got === 'string') {
        this.cached = undefined;
        this.failure = undefined;
        return got;
      }
      if (typeof got?.token !== 'string' || got.token === '') throw new Error('getToken returned no token');
      this.cached = got;
      this.failure = undefined;
      this.refreshAt = refreshAt(got, this.clock.now());
      return got.token;
    } catch (err) {
      const now = this.clock.now();
      if (old && now < old.expiresOnTimestamp) {
        this.holdOldUntil = now + REFRESH_RETRY_MS;
        return old.token;
      }
      this.failure = { error: err, until: now + this.holdAfterFailure(err) };
      throw err;
    }
  }
}

/** 5 minutes before expiry, but no sooner than halfway through the lifetime (short-lived tokens). */
function refreshAt(t: AccessTokenLike, obtainedAt: number): number {
  if (t.refreshAfterTimestamp !== undefined) return t.refreshAfterTimestamp;
  const halfway = obtainedAt + (t.expiresOnTimestamp - obtainedAt) / 2;
  return Math.max(halfway, t.expiresOnTimestamp - REFRESH_BEFORE_EXPIRY_MS);
}
