/**
 * What an answer (or a failure to get one) means for a call. Only Graph's own "call not found"
 * ends a call; configuration mistakes (a wrong baseUrl, a revoked consent, a wrong secret) are
 * permanent: they do not heal by retrying fast, and they must not end calls.
 * See docs/decisions.md, "What ends a call, what is permanent".
 */

/** Graph's error code for a call that no longer exists (404 with `8522`, "Call not found."; docs/errors.md). */
export const CALL_NOT_FOUND_CODE = '8522';

/** Why an attempt failed in a way retrying soon will not fix. */
export type PermanentKind =
  /** 400: Graph refused the request itself. */
  | 'badRequest'
  /** 401 even with a freshly obtained token. */
  | 'unauthorized'
  /** 403: e.g. consent revoked, or the call belongs to another app. */
  | 'forbidden'
  /** 404 without Graph's 8522 code: most likely a wrong baseUrl. */
  | 'notFound'
  /** The token endpoint answered invalid_client (a wrong or expired secret). */
  | 'invalidClient'
  /** The token endpoint answered unauthorized_client (an unknown app id, or not in this tenant). */
  | 'unauthorizedClient';

/** OAuth error codes of the token endpoint that no retry fixes. */
const PERMANENT_OAUTH: Record<string, PermanentKind> = {
  invalid_client: 'invalidClient',
  unauthorized_client: 'unauthorizedClient',
};

/** Graph's `error.code` from an error body, if it is one. */
export function graphErrorCode(body: string): string | undefined {
  if (!body) return undefined;
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown } };
    return typeof parsed.error?.code === 'string' ? parsed.error.code : undefined;
  } catch {
    return undefined;
  }
}

/** A permanent kind for an HTTP answer of Graph, or undefined when retrying may help. */
export function permanentStatus(status: number, refreshedToken: boolean): PermanentKind | undefined {
  if (status === 400) return 'badRequest';
  if (status === 401 && refreshedToken) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'notFound';
  return undefined;
}

/**
 * The OAuth error code carried by a token error: `code` of callkeeper's TokenRequestError,
 * `errorResponse.error` of @azure/identity's AuthenticationError.
 */
export function oauthErrorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { oauthError?: unknown; errorResponse?: { error?: unknown } };
  if (typeof e.oauthError === 'string') return e.oauthError;
  if (typeof e.errorResponse?.error === 'string') return e.errorResponse.error;
  return undefined;
}

/** A permanent kind for a token error, or undefined when it may be transient (network, 5xx). */
export function permanentTokenError(err: unknown): PermanentKind | undefined {
  const code = oauthErrorCode(err);
  return code === undefined ? undefined : PERMANENT_OAUTH[code];
}
