import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { type Clock, safeIso } from '../clock/clock.js';

/**
 * Errors of the login authority. They are not Graph errors: Microsoft's token endpoint answers
 * OAuth 2.0 error bodies ({error, error_description, error_codes, ...}), and client libraries
 * (MSAL, @azure/identity) parse exactly that shape.
 */
export class AadError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly aadsts: number,
    message: string,
  ) {
    super(message);
  }
}

type Params<T extends string> = T extends `${string}{${infer P}}${infer Rest}` ? P | Params<Rest> : never;

export interface AadEntry {
  readonly status: number;
  readonly error: string;
  readonly aadsts: number;
  readonly message: string;
  readonly when: string;
}

function define<T extends string>(status: number, error: string, aadsts: number, message: T, when: string) {
  const make = (params: Record<Params<T>, string>) =>
    new AadError(
      status,
      error,
      aadsts,
      message.replace(/\{(\w+)\}/g, (_, k: string) => (params as Record<string, string>)[k] ?? ''),
    );
  return Object.assign(make, { status, error, aadsts, message, when }) as typeof make & AadEntry;
}

export const aadErrors = {
  missingParameter: define(
    400,
    'invalid_request',
    900144,
    "AADSTS900144: The request body must contain the following parameter: '{parameter}'.",
    'A required form parameter is missing (or the body is not a form).',
  ),
  unsupportedGrantType: define(
    400,
    'unsupported_grant_type',
    70003,
    "AADSTS70003: The app requested an unsupported grant type '{grant}'.",
    'grant_type is not client_credentials.',
  ),
  tenantNotFound: define(
    400,
    'invalid_request',
    90002,
    "AADSTS90002: Tenant '{tenant}' not found.",
    'No registered app lives in that tenant.',
  ),
  unknownClient: define(
    400,
    'unauthorized_client',
    700016,
    "AADSTS700016: Application with identifier '{clientId}' was not found in the directory '{tenant}'.",
    'The client id is not registered in that tenant.',
  ),
  invalidSecret: define(
    401,
    'invalid_client',
    7000215,
    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{clientId}'.",
    'Wrong client_secret.',
  ),
  throttled: define(
    429,
    'temporarily_unavailable',
    90055,
    'AADSTS90055: TenantThrottlingError - There are too many incoming requests. Too many wrong client secrets were sent for this client; retry after {seconds} seconds.',
    'Too many wrong client secrets (10 a minute) for one client id from one source, or from one source; `Retry-After` says when to try again.',
  ),
  invalidScope: define(
    400,
    'invalid_scope',
    1002012,
    'AADSTS1002012: The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).',
    'scope is not https://graph.microsoft.com/.default.',
  ),
} as const;

export function sendAadError(reply: FastifyReply, err: AadError, clock: Clock): FastifyReply {
  const trace = randomUUID();
  const stamp = `${safeIso(clock.now()).replace('T', ' ').slice(0, 19)}Z`;
  return reply
    .code(err.status)
    .type('application/json; charset=utf-8')
    .send({
      error: err.error,
      error_description: `${err.message}\r\nTrace ID: ${trace}\r\nCorrelation ID: ${trace}\r\nTimestamp: ${stamp}`,
      error_codes: [err.aadsts],
      timestamp: stamp,
      trace_id: trace,
      correlation_id: trace,
      error_uri: `https://login.microsoftonline.com/error?code=${err.aadsts}`,
    });
}
