import { safeIso } from '../clock/clock.js';

/**
 * Every error callkeeper answers with comes from this catalog, so that status, code and
 * message stay the ones Graph uses and docs/errors.md can be checked against it by a test.
 * A message template may name parameters in braces: `{detail}`.
 */
export class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra response headers (Allow, Retry-After, ...). */
    readonly headers: Readonly<Record<string, string>> = {},
    /** Extra innerError fields some Graph errors carry (a 429's code and status). */
    readonly inner: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'GraphError';
  }
}

type Params<T extends string> = T extends `${string}{${infer P}}${infer Rest}` ? P | Params<Rest> : never;
type Factory<T extends string> = [Params<T>] extends [never] ? () => GraphError : (params: Record<Params<T>, string>) => GraphError;

export interface ErrorEntry {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  /** When callkeeper answers with it. */
  readonly when: string;
}

function define<T extends string>(
  status: number,
  code: string,
  message: T,
  when: string,
  headers?: (p: Record<string, string>) => Record<string, string>,
  inner?: Record<string, string>,
): Factory<T> & ErrorEntry {
  const make = (params: Record<string, string> = {}) =>
    new GraphError(
      status,
      code,
      message.replace(/\{(\w+)\}/g, (_, k: string) => params[k] ?? ''),
      headers?.(params),
      inner,
    );
  return Object.assign(make, { status, code, message, when }) as unknown as Factory<T> & ErrorEntry;
}

/**
 * The challenge Graph sends with every 401 (RFC 6750). `loginHost` is the cloud's authority;
 * client_id is Graph's own application id.
 */
export function bearerChallenge(loginHost = 'login.microsoftonline.com'): string {
  return `Bearer realm="", authorization_uri="https://${loginHost}/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`;
}
const challenge = () => ({ 'www-authenticate': bearerChallenge() });

export const graphErrors = {
  callNotFound: define(404, '8522', 'Call not found.', 'The call id is unknown, belongs to another app or tenant, or the call has ended.'),
  tokenMissing: define(401, 'InvalidAuthenticationToken', 'Access token is empty.', 'No `Authorization: Bearer` header.', challenge),
  tokenInvalid: define(
    401,
    'InvalidAuthenticationToken',
    'Access token validation failure. {reason}',
    'The token is malformed, forged, for another audience or issuer, or signed with an algorithm other than RS256.',
    challenge,
  ),
  tokenExpired: define(
    401,
    'InvalidAuthenticationToken',
    'Lifetime validation failed, the token is expired.',
    "The token's `exp` (plus 5 minutes of clock skew) has passed on the wall clock, or `POST /_callkeeper/tokens/expire` expired it.",
    challenge,
  ),
  tokenNotYetValid: define(
    401,
    'InvalidAuthenticationToken',
    'Lifetime validation failed, the token is not yet valid.',
    "The token's `nbf` is more than 5 minutes ahead of the wall clock.",
    challenge,
  ),
  delegatedToken: define(
    403,
    'Forbidden',
    'The calls API supports application permissions only; a delegated (user) token cannot call it.',
    'The token is not app-only (`idtyp` is not `app`).',
  ),
  missingRole: define(
    403,
    '7504',
    'Insufficient enterprise tenant permissions, cannot access this API.',
    'The app lacks the application permission the kind of call needs (see README, Permissions).',
  ),
  callNotIncoming: define(
    400,
    'BadRequest',
    "The call is in state '{state}'; only an incoming call can be answered, rejected or redirected.",
    'answer, reject or redirect on a call that is not (or no longer) incoming.',
  ),
  appExists: define(
    409,
    'Conflict',
    "An app with client id '{clientId}' is already registered.",
    'POST /_callkeeper/apps with a client id in use.',
  ),
  tooManyApps: define(
    409,
    'Conflict',
    'No more apps can be registered: the limit is {limit}.',
    'POST /_callkeeper/apps when the store already holds the most run-time registrations allowed.',
  ),
  invalidJson: define(
    400,
    'BadRequest',
    'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.',
    'The body is not valid JSON, or not a JSON object.',
  ),
  jsonTooDeep: define(
    400,
    'BadRequest',
    'The JSON request payload is nested more than {max} levels deep.',
    'A JSON body nested deeper than the limit (64 levels; Graph bodies nest about ten).',
  ),
  invalidRequest: define(400, 'BadRequest', '{detail}', 'The body fails validation; the message names the field.'),
  keepAliveBody: define(400, 'BadRequest', 'keepAlive takes no request body.', 'keepAlive was sent a body other than none or `{}`.'),
  unsupportedMediaType: define(
    415,
    'UnsupportedMediaType',
    "Content type '{contentType}' is not supported; send application/json.",
    'A body arrives with a content type other than JSON.',
  ),
  payloadTooLarge: define(
    413,
    'RequestEntityTooLarge',
    'The request body exceeds the limit of {limit} bytes.',
    'The body is larger than the server accepts.',
  ),
  segmentNotFound: define(
    400,
    'BadRequest',
    "Resource not found for the segment '{segment}'.",
    'A Graph path (under /v1.0 or /beta) that names no resource callkeeper serves.',
  ),
  methodNotAllowed: define(
    405,
    'MethodNotAllowed',
    "The HTTP method '{method}' is not allowed on this resource; allowed: {allowed}.",
    'A known path with a method it does not support (the Allow header lists those it does; `none`: an empty Allow).',
    (p) => ({ allow: p.allowed === 'none' ? '' : (p.allowed ?? '') }),
  ),
  notFound: define(
    404,
    'NotFound',
    "The URL '{path}' does not exist on this server.",
    'A path outside /v1.0, /beta, the login endpoints and /_callkeeper.',
  ),
  badUrl: define(
    400,
    'BadRequest',
    'The request URL is malformed.',
    'The URL cannot be decoded (bad percent-encoding, control characters).',
  ),
  headersTooLarge: define(
    431,
    'RequestHeaderFieldsTooLarge',
    'The request headers or URL are too large.',
    'The request line or headers exceed the server limit.',
  ),
  callNotEstablished: define(
    400,
    'BadRequest',
    "The call is in state '{state}'; this action needs an established call.",
    'An operation (playPrompt, recordResponse, mute, transfer, invite, ...) on a call that is not established yet, or is being transferred.',
  ),
  appHostedMedia: define(
    400,
    'BadRequest',
    '{action} is supported only for calls that are initiated with serviceHostedMediaConfig.',
    'playPrompt, recordResponse, subscribeToTone or cancelMediaProcessing on a call with app-hosted media.',
  ),
  participantNotFound: define(
    404,
    'NotFound',
    'Participant not found.',
    "The participant id is not in the call's roster (never was, or left).",
  ),
  participantIsBot: define(
    400,
    'BadRequest',
    "The bot's own participant cannot be removed; hang up the call instead (DELETE on the call).",
    "DELETE .../participants/{id} or a control-API leave naming the bot's own participant.",
  ),
  operationNotFound: define(404, 'NotFound', 'Operation not found.', 'The operation id is unknown in that call.'),
  recordingNotFound: define(
    404,
    'NotFound',
    'Recording not found.',
    'A recordingLocation of an unknown, unfinished or purged recording (recordings go with their call).',
  ),
  recordingTokenInvalid: define(
    401,
    'InvalidAuthenticationToken',
    'The recording access token is missing or wrong.',
    'A recording is fetched without `Authorization: Bearer <recordingAccessToken>` of that recording.',
  ),
  requestTimeout: define(
    408,
    'RequestTimeout',
    'The request was not received in time.',
    'The request headers or body did not arrive within the server timeouts (docs/security.md).',
  ),
  invalidControlRequest: define(400, 'BadRequest', '{detail}', 'A control-API (`/_callkeeper/...`) request with a bad parameter.'),
  controlForbidden: define(
    403,
    'Forbidden',
    'The control API refused this request: {reason}. See docs/security.md.',
    'A control-API request from a web page (foreign `Origin`, cross-site), with a `Host` that is not `localhost` or an address (DNS rebinding), or reaching a network-bound server that has no control token.',
  ),
  controlTokenRequired: define(
    401,
    'Unauthorized',
    "The control API needs the control token in the '{header}' header.",
    'A control-API request without the right `x-callkeeper-control-token` when callkeeper runs with `--control-token`.',
  ),
  notImplemented: define(
    501,
    'NotImplemented',
    "The requested feature isn't implemented: callkeeper does not emulate {feature} yet.",
    'A route Graph documents under /communications/calls that callkeeper does not serve yet (src/http/not-implemented-routes.ts); after the token check.',
  ),
  internal: define(
    500,
    'InternalServerError',
    'An internal server error occurred.',
    'A bug in callkeeper; the log holds the details. Never sent for bad input.',
  ),
  unavailable: define(
    503,
    'ServiceUnavailable',
    'The service is shutting down or its store is unavailable. Retry later.',
    'The store cannot be reached or the server is stopping.',
    () => ({ 'retry-after': '1' }),
  ),
  // Fault rules and throttling (docs/decisions.md, "Fault and throttle errors"); the fault
  // or throttle adds its Retry-After header (src/faults/fault-effects.ts).
  tooManyRequests: define(
    429,
    'TooManyRequests',
    'Please retry again later.',
    'A fault rule with status 429, or `--throttle`: the app sent more requests in the window than the limit.',
    undefined,
    { code: '429', message: 'Please retry after', status: '429' },
  ),
  faultInternal: define(500, 'generalException', 'An unspecified error has occurred.', 'A fault rule with status 500.'),
  faultBadGateway: define(
    502,
    'BadGateway',
    'The gateway received an invalid response from the service that handles the request.',
    'A fault rule with status 502.',
  ),
  faultUnavailable: define(
    503,
    'serviceNotAvailable',
    'The service is not available. Try the request again after a delay. There may be a Retry-After header.',
    'A fault rule with status 503.',
  ),
  faultTimeout: define(504, 'timeout', 'The operation timed out before it could be completed.', 'A fault rule with status 504.'),
  faultNotFound: define(
    404,
    'NotFound',
    "There is no fault rule with id '{id}'.",
    'DELETE /_callkeeper/faults/{id} with an id that names no rule.',
  ),
} as const;

export type GraphErrorName = keyof typeof graphErrors;

/** Graph's date format in innerError: ISO 8601 to the second, without zone designator. */
export function graphErrorDate(epochMs: number): string {
  return safeIso(epochMs).slice(0, 19);
}

export interface ErrorContext {
  now: number;
  requestId: string;
  clientRequestId: string;
}

/** Graph's JSON error body. */
export function errorBody(err: GraphError, ctx: ErrorContext) {
  return {
    error: {
      code: err.code,
      message: err.message,
      innerError: {
        date: graphErrorDate(ctx.now),
        'request-id': ctx.requestId,
        'client-request-id': ctx.clientRequestId,
        ...err.inner,
      },
    },
  };
}
