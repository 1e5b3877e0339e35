import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { AppRegistry } from '../auth/apps.js';
import type { Cloud } from '../auth/clouds.js';
import type { Principal, TokenVerifier } from '../auth/token-verifier.js';
import type { RequestCause } from '../calls/call-events.js';
import { cloudOfCallId } from '../calls/call-ids.js';
import { toGraphCall } from '../calls/call-resource.js';
import type { CallService } from '../calls/call-service.js';
import type { CallOwner } from '../calls/call-types.js';
import { type GraphError, graphErrors } from '../errors/graph-errors.js';
import { graphRootPattern, PREFIXED_CALL_CLOUDS } from './graph-roots.js';
import { addNotImplementedSegments } from './not-implemented-routes.js';
import { causeOf } from './request-context.js';
import { type Req, type ResourceOptions, resource } from './resource.js';
import { GRAPH_JSON } from './wire.js';

export interface GraphRouteDeps {
  service: CallService;
  /** One verifier per cloud: each accepts only its own cloud's tokens. */
  verifiers: ReadonlyMap<Cloud['name'], TokenVerifier>;
  apps: AppRegistry;
}

/** The cloud whose Graph root a request came in on, set by its authentication hook. */
const REQUEST_CLOUD = new WeakMap<FastifyRequest, Cloud['name']>();
export const cloudOfRequest = (req: FastifyRequest): Cloud['name'] => REQUEST_CLOUD.get(req) ?? 'global';

export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw graphErrors.tokenMissing();
  return req.principal;
}

export function ownerOf(req: FastifyRequest): CallOwner {
  const p = principalOf(req);
  return { appId: p.appId, tenantId: p.tenantId };
}

/** The Graph root the client used: scheme, host, cloud prefix and version. */
export function serviceRoot(req: FastifyRequest): string {
  const path = req.url.split('?')[0] ?? '';
  const at = path.indexOf('/communications/');
  return `${req.protocol}://${req.host}${at >= 0 ? path.slice(0, at) : ''}`;
}

function isEmptyObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}

export function registerGraphRoutes(app: FastifyInstance, deps: GraphRouteDeps): void {
  const { service, verifiers, apps } = deps;

  const create = async (req: Req, reply: FastifyReply) => {
    const p = principalOf(req);
    const displayName = apps.find(p.appId)?.displayName ?? p.appId;
    const call = await service.create(
      { appId: p.appId, tenantId: p.tenantId, displayName, roles: p.roles, cloud: cloudOfRequest(req) },
      req.body,
      causeOf(req),
    );
    const root = serviceRoot(req);
    return reply.code(201).header('location', `${root}/communications/calls/${call.id}`).type(GRAPH_JSON).send(toGraphCall(call, root));
  };
  const get = async (req: Req, reply: FastifyReply) => {
    const call = await service.get(ownerOf(req), req.params.id);
    return reply.type(GRAPH_JSON).send(toGraphCall(call, serviceRoot(req)));
  };
  const hangUp = async (req: Req, reply: FastifyReply) => {
    await service.hangUp(ownerOf(req), req.params.id, causeOf(req));
    return reply.code(204).send();
  };
  const keepAlive = async (req: Req, reply: FastifyReply) => {
    // https://learn.microsoft.com/graph/api/call-keepalive: no request body. An empty JSON object is what some clients send for "nothing".
    if (req.body !== undefined && req.body !== null && !isEmptyObject(req.body)) throw graphErrors.keepAliveBody();
    await service.keepAlive(ownerOf(req), req.params.id, causeOf(req));
    return reply.code(200).type('text/plain').send('');
  };

  const incomingAction =
    (act: (owner: CallOwner, id: string, body: unknown, cause: RequestCause) => Promise<void>) => async (req: Req, reply: FastifyReply) => {
      await act(ownerOf(req), req.params.id, req.body, causeOf(req));
      return reply.code(202).send();
    };
  const answer = incomingAction((o, id, b, c) => service.answer(o, id, b, apps.find(o.appId)?.callbackUri, c));
  const reject = incomingAction((o, id, b, c) => service.reject(o, id, b, c));
  const redirect = incomingAction((o, id, b, c) => service.redirect(o, id, b, c));

  const registerVersion = (root: string, opts: ResourceOptions) => {
    const calls = `${root}/communications/calls`;
    resource(app, calls, { POST: create }, opts);
    resource(app, `${calls}/:id`, { GET: get, DELETE: hangUp }, opts);
    resource(app, `${calls}/:id/keepAlive`, { POST: keepAlive }, opts);
    resource(app, `${calls}/:id/microsoft.graph.keepAlive`, { POST: keepAlive }, opts);
    for (const [name, handler] of [
      ['answer', answer],
      ['reject', reject],
      ['redirect', redirect],
    ] as const) {
      resource(app, `${calls}/:id/${name}`, { POST: handler }, opts);
      resource(app, `${calls}/:id/microsoft.graph.${name}`, { POST: handler }, opts);
    }
  };

  for (const { root, opts } of graphRoots(verifiers)) registerVersion(root, opts);
}

/**
 * The Graph roots callkeeper serves calls under, as route patterns (graph-roots.ts: the global
 * root, and one pattern for every prefixed cloud), each with the hook that authenticates
 * requests with the tokens of the cloud the URL names. China's Graph has no calls API: its
 * paths match no route and fall through to "segment not found".
 */
export function graphRoots(verifiers: ReadonlyMap<Cloud['name'], TokenVerifier>): { root: string; opts: ResourceOptions }[] {
  const out: { root: string; opts: ResourceOptions }[] = [];
  const admit = (req: FastifyRequest, principal: Principal, cloud: Cloud['name']): GraphError | undefined => {
    if (principal.idtyp !== 'app') return graphErrors.delegatedToken();
    req.principal = principal;
    REQUEST_CLOUD.set(req, cloud);
    // A call lives in one cloud: another cloud's token never reaches it (docs/decisions.md).
    const id = (req.params as { id?: unknown } | undefined)?.id;
    if (typeof id === 'string' && cloudOfCallId(id) !== cloud) return graphErrors.callNotFound();
    return undefined;
  };
  // Callback-style: a token already verified is admitted without waiting on a promise.
  const authenticateWith = (req: FastifyRequest, verifier: TokenVerifier, cloud: Cloud['name'], done: (err?: Error) => void) => {
    const principal = verifier.cached(req.headers.authorization);
    if (principal) return done(admit(req, principal, cloud));
    verifier.verify(req.headers.authorization).then(
      (p) => done(admit(req, p, cloud)),
      (err: Error) => done(err),
    );
  };
  const global = verifiers.get('global');
  if (global) {
    const authenticate: onRequestHookHandler = (req, _reply, done) => authenticateWith(req, global, 'global', done);
    out.push({ root: graphRootPattern([]), opts: { onRequest: authenticate } });
  }
  const prefixed = PREFIXED_CALL_CLOUDS.filter((c) => verifiers.has(c.name));
  if (prefixed.length) {
    // The route's pattern admits only these prefixes: `cloud` is always one of them.
    const byPrefix = new Map(prefixed.map((c) => [c.prefix.slice(1), { name: c.name, verifier: verifiers.get(c.name) as TokenVerifier }]));
    const authenticate: onRequestHookHandler = (req, _reply, done) => {
      const cloud = byPrefix.get((req.params as { cloud: string }).cloud) as { name: Cloud['name']; verifier: TokenVerifier };
      authenticateWith(req, cloud.verifier, cloud.name, done);
    };
    out.push({ root: graphRootPattern(prefixed), opts: { onRequest: authenticate } });
  }
  return out;
}

/** The path segments callkeeper serves under a Graph version, for "segment not found" errors. */
const ACTIONS = [
  'keepAlive',
  'answer',
  'reject',
  'redirect',
  'playPrompt',
  'recordResponse',
  'subscribeToTone',
  'mute',
  'unmute',
  'updateRecordingStatus',
  'cancelMediaProcessing',
  'changeScreenSharingRole',
  'transfer',
  'sendDtmfTones',
];
const qualified = (names: string[]) =>
  Object.fromEntries(
    names.flatMap((a) => [
      [a, {}],
      [`microsoft.graph.${a}`, {}],
    ]),
  );
const KNOWN: Record<string, unknown> = {
  communications: {
    calls: {
      '*': {
        ...qualified(ACTIONS),
        participants: { ...qualified(['invite']), $count: {}, '*': qualified(['mute']) },
        operations: { $count: {}, '*': {} },
      },
    },
  },
};
let withNotImplemented = false;
/** A cloud without the calls API knows communications but not calls. */
const KNOWN_WITHOUT_CALLS: Record<string, unknown> = { communications: {} };

/** The first segment of a Graph path that names nothing callkeeper serves in that cloud. */
export function unknownSegment(segments: string[], cloud: Cloud): string {
  if (!withNotImplemented) {
    // Lazily: not-implemented-routes.ts imports this module.
    addNotImplementedSegments((KNOWN.communications as Record<string, Record<string, unknown>>).calls as Record<string, unknown>);
    withNotImplemented = true;
  }
  let node: Record<string, unknown> = cloud.callsAvailable ? KNOWN : KNOWN_WITHOUT_CALLS;
  for (const seg of segments) {
    const next = (node[seg] ?? node['*']) as Record<string, unknown> | undefined;
    if (!next) return seg;
    node = next;
  }
  return segments[segments.length - 1] ?? '';
}
