import { type Dispatcher, getGlobalDispatcher } from 'undici';
import { type Clock, ScaledClock } from '../clock/clock.js';
import { type FetchLike, fetchSend, type HttpSend, undiciSend } from './http-send.js';
import type { AccessTokenLike, TokenCredentialLike } from './token-source.js';
import { USER_AGENT } from './version.js';

/** Graph's app-only scope (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow). */
export const GRAPH_DEFAULT_SCOPE = 'https://graph.microsoft.com/.default';
export const DEFAULT_AUTHORITY = 'https://login.microsoftonline.com';

export interface ClientCredentialsOptions {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** The login host; default https://login.microsoftonline.com (a callkeeper server is its own). */
  authority?: string;
  /** Used when getToken is called without scopes. Default https://graph.microsoft.com/.default. */
  scope?: string;
  /** Expiry times are stamped with this clock. Default: the wall clock. */
  clock?: Clock;
  /** undici dispatcher for the token request; default undici's global one. */
  dispatcher?: Dispatcher;
  /** Or send through this fetch. */
  fetch?: FetchLike;
  /** Network timeout, wall-clock ms. Default 30 s. */
  timeoutMs?: number;
}

/** The token endpoint refused: `oauthError` is its OAuth `error` (invalid_client, unauthorized_client, ...). */
export class TokenRequestError extends Error {
  override readonly name = 'TokenRequestError';
  constructor(
    message: string,
    /** HTTP status of the token endpoint's answer. */
    readonly status: number,
    /** The OAuth `error` field, when the answer had one. */
    readonly oauthError: string | undefined,
  ) {
    super(message);
  }
}

interface TokenAnswer {
  access_token?: unknown;
  expires_in?: unknown;
  error?: unknown;
  error_description?: unknown;
}

/**
 * A TokenCredential for the OAuth 2.0 client-credentials grant: POSTs the app's id and secret
 * to `{authority}/{tenant}/oauth2/v2.0/token`. Enough for the keeper and the `keep` command
 * without @azure/identity (which also refuses plain-http authorities such as a local callkeeper).
 */
export function clientCredentials(options: ClientCredentialsOptions): TokenCredentialLike {
  const clock = options.clock ?? new ScaledClock();
  const timeoutMs = options.timeoutMs ?? 30_000;
  const send: HttpSend = options.fetch
    ? fetchSend(options.fetch, timeoutMs)
    : undiciSend(options.dispatcher ?? getGlobalDispatcher(), timeoutMs);
  const authority = (options.authority ?? DEFAULT_AUTHORITY).replace(/\/+$/, '');
  const url = `${authority}/${encodeURIComponent(options.tenantId)}/oauth2/v2.0/token`;

  return {
    async getToken(scopes: string | string[]): Promise<AccessTokenLike> {
      const scope = (Array.isArray(scopes) ? scopes.join(' ') : scopes) || (options.scope ?? GRAPH_DEFAULT_SCOPE);
      const form = new URLSearchParams({
        client_id: options.clientId,
        client_secret: options.clientSecret,
        scope,
        grant_type: 'client_credentials',
      });
      const requestedAt = clock.now();
      const res = await send({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'user-agent': USER_AGENT },
        body: form.toString(),
      });
      let answer: TokenAnswer = {};
      try {
        answer = JSON.parse(res.body) as TokenAnswer;
      } catch {
        // Reported below with the status.
      }
      if (res.status !== 200 || typeof answer.access_token !== 'string') {
        const oauthError = typeof answer.error === 'string' ? answer.error : undefined;
        const why = oauthError ? `${oauthError}: ${firstLine(answer.error_description)}` : res.body.slice(0, 200);
        throw new TokenRequestError(`token request to ${url} failed with HTTP ${res.status} (${why})`, res.status, oauthError);
      }
      const expiresIn = typeof answer.expires_in === 'number' ? answer.expires_in : Number(answer.expires_in ?? 3599);
      // expires_in is wall seconds; on a scaled clock one wall second is `scale` virtual ones.
      const virtualPerWall = clock.scale > 0 ? clock.scale : 1;
      return { token: answer.access_token, expiresOnTimestamp: requestedAt + expiresIn * 1000 * virtualPerWall };
    },
  };
}

function firstLine(v: unknown): string {
  return typeof v === 'string' ? (v.split(/\r?\n/)[0] ?? '') : '';
}
