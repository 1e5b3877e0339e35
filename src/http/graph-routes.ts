import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppRegistry } from '../auth/apps.js';
import type { Principal, TokenVerifier } from '../auth/token-verifier.js';
import { toGraphCall } from '../calls/call-resource.js';
import type { CallService } from '../calls/call-service.js';
import type { CallOwner } from '../calls/call-types.js';
import { graphErrors } from '../errors/graph-errors.js';
import { type Req, resource } from './resource.js';
import { GRAPH_JSON } from './wire.js';

export interface GraphRouteDeps {
  service: CallService;
  verifier: TokenVerifier;
  apps: AppRegistry;
}

/** The Graph versions callkeeper serves; both behave alike for calls. */
export const GRAPH_VERSIONS = ['v1.0', 'beta'] as const;

function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw graphErrors.tokenMissing();
  return req.principal;
}

function ownerOf(req: FastifyRequest): CallOwner {
  const p = principalOf(req);
  return { appId: p.appId, tenantId: p.tenantId };
}

function serviceRoot(req: FastifyRequest): string {
  return `${req.protocol}://${req.host}/${(req.routeOptions.config as { version?: string }).version ?? 'v1.0'}`;
}

function isEmptyObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}

export function registerGraphRoutes(app: FastifyInstance, deps: GraphRouteDeps): void {
  const { service, verifier, apps } = deps;
  const authenticate = async (req: FastifyRequest) => {
    req.principal = await verifier.verify(req.headers.authorization);
  };

  const create = async (req: FastifyRequest, reply: FastifyReply) => {
    const p = principalOf(req);
    const displayName = apps.find(p.appId)?.displayName ?? p.appId;
    const call = await service.create({ appId: p.appId, tenantId: p.tenantId, displayName }, req.body);
    const root = serviceRoot(req);
    return reply.code(201).header('location', `${root}/communications/calls/${call.id}`).type(GRAPH_JSON).send(toGraphCall(call, root));
  };
  const get = async (req: Req, reply: FastifyReply) => {
    const call = await service.get(ownerOf(req), req.params.id);
    return reply.type(GRAPH_JSON).send(toGraphCall(call, serviceRoot(req)));
  };
  const hangUp = async (req: Req, reply: FastifyReply) => {
    await service.hangUp(ownerOf(req), req.params.id);
    return reply.code(204).send();
  };
  const keepAlive = async (req: Req, reply: FastifyReply) => {
    // FACTS.md §1: no body. An empty JSON object is what some clients send for "nothing".
    if (req.body !== undefined && req.body !== null && !isEmptyObject(req.body)) throw graphErrors.keepAliveBody();
    await service.keepAlive(ownerOf(req), req.params.id);
    return reply.code(200).type('text/plain').send('');
  };

  for (const version of GRAPH_VERSIONS) {
    const opts = { onRequest: authenticate, config: { version } };
    const calls = `/${version}/communications/calls`;
    resource(app, calls, { POST: create }, opts);
    resource(app, `${calls}/:id`, { GET: get, DELETE: hangUp }, opts);
    resource(app, `${calls}/:id/keepAlive`, { POST: keepAlive }, opts);
    resource(app, `${calls}/:id/microsoft.graph.keepAlive`, { POST: keepAlive }, opts);
  }
}

/** The path segments callkeeper serves under a Graph version, for "segment not found" errors. */
const KNOWN: Record<string, unknown> = { communications: { calls: { '*': { keepAlive: {}, 'microsoft.graph.keepAlive': {} } } } };

/** The first segment of a Graph path that names nothing callkeeper serves. */
export function unknownSegment(segments: string[]): string {
  let node: Record<string, unknown> = KNOWN;
  for (const seg of segments) {
    const next = (node[seg] ?? node['*']) as Record<string, unknown> | undefined;
    if (!next) return seg;
    node = next;
  }
  return segments[segments.length - 1] ?? '';
}
