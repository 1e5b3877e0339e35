/**
 * Access tokens live on the wall clock, the clock of whoever holds them (docs/decisions.md,
 * "Time of tokens"): MSAL and @azure/identity decide when to refresh from their own wall clock
 * and `expires_in`, never from `exp`, so a token that aged with virtual time would be refused
 * while the client still trusts it.
 */

/** Graph's usual `expires_in` (the client-credentials answer, https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow: 3599 s). */
export const DEFAULT_TOKEN_LIFETIME_S = 3599;
/**
 * Bounds of Microsoft's configurable access-token lifetime (10 minutes to 1 day). Below 10
 * minutes MSAL's 5-minute early refresh would fetch a token for nearly every request.
 */
export const MIN_TOKEN_LIFETIME_S = 600;
export const MAX_TOKEN_LIFETIME_S = 24 * 3600;
/** Clock skew Microsoft's token validators allow (5 minutes), on nbf and exp alike. */
export const TOKEN_CLOCK_SKEW_S = 300;

/** Checks a configured lifetime (seconds); throws a RangeError naming the bounds. */
export function checkTokenLifetime(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < MIN_TOKEN_LIFETIME_S || seconds > MAX_TOKEN_LIFETIME_S) {
    throw new RangeError(
      `token lifetime must be a whole number of seconds from ${MIN_TOKEN_LIFETIME_S} (10 minutes) to ${MAX_TOKEN_LIFETIME_S} (1 day), got ${seconds}`,
    );
  }
  return seconds;
}

/**
 * "Every token issued before now is expired" (`POST /_callkeeper/tokens/expire`), for all apps
 * or one. Issuer and verifiers share one instance. A token is expired by it when its `iat` is
 * before the cutoff that applies to its app.
 *
 * `iat` has second precision, so "before now" needs care: the cutoff is the second after the
 * newest `iat` issued so far (and at least the current one), and tokens issued after the call
 * carry an `iat` of at least the cutoff. A token issued in the same second as, but after, the
 * call thus gets an `iat` up to a second or so ahead; its nbf and exp stay real.
 */
export class TokenRevocations {
  private allS = Number.NEGATIVE_INFINITY;
  private readonly perAppS = new Map<string, number>();
  private newestIatS = Number.NEGATIVE_INFINITY;
  private readonly newestIatOfApp = new Map<string, number>();

  /** Tokens issued so far (to `appId`, or to every app) are expired. Returns the cutoff, whole seconds. */
  expireIssued(nowMs: number, appId?: string): number {
    if (appId === undefined) {
      this.allS = Math.max(this.allS, Math.ceil(nowMs / 1000), this.newestIatS + 1);
      return this.allS;
    }
    const key = appId.toLowerCase();
    const cutoff = Math.max(
      this.perAppS.get(key) ?? Number.NEGATIVE_INFINITY,
      Math.ceil(nowMs / 1000),
      (this.newestIatOfApp.get(key) ?? Number.NEGATIVE_INFINITY) + 1,
    );
    this.perAppS.set(key, cutoff);
    return Math.max(cutoff, this.allS);
  }

  /** Whole seconds: a token of `appId` whose iat is below this is expired. */
  cutoffFor(appId: string): number {
    const own = this.perAppS.size === 0 ? undefined : this.perAppS.get(appId.toLowerCase());
    return own === undefined ? this.allS : Math.max(own, this.allS);
  }

  /** The `iat` of a token issued to `appId` at `nowMs`, recorded as issued. */
  issuedAt(appId: string, nowMs: number): number {
    const key = appId.toLowerCase();
    const iat = Math.max(Math.floor(nowMs / 1000), this.cutoffFor(key));
    this.newestIatS = Math.max(this.newestIatS, iat);
    this.newestIatOfApp.set(key, Math.max(this.newestIatOfApp.get(key) ?? Number.NEGATIVE_INFINITY, iat));
    return iat;
  }
}
