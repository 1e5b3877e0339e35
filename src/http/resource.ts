import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler, onRequestHookHandler } from 'fastify';
import { graphErrors } from '../errors/graph-errors.js';
import { notImplementedMethods } from './not-implemented-routes.js';

type Method = 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';
const ALL: Method[] = ['GET', 'POST', 'DELETE', 'PUT', 'PATCH'];

/** Path parameters callkeeper's routes use, and query strings as Fastify parses them. */
export interface RouteTypes {
  Params: { id: string; tenant: string };
  Querystring: Record<string, string | undefined>;
}
export type Req = FastifyRequest<RouteTypes>;
export type Handler = (req: Req, reply: FastifyReply) => Promise<unknown>;

export interface ResourceOptions {
  onRequest?: onRequestAsyncHookHandler | onRequestHookHandler;
  config?: Record<string, unknown>;
}

/**
 * Registers a path's handlers, and a 405 with `Allow` for every other method, so a wrong
 * method gets Graph's answer rather than a framework 404. A method Graph documents on the path
 * but callkeeper does not implement (not-implemented-routes.ts) answers 501, after the
 * path's hooks (the token check), instead.
 */
export function resource(app: FastifyInstance, url: string, handlers: Partial<Record<Method, Handler>>, opts: ResourceOptions = {}): void {
  const allowed = Object.keys(handlers) as Method[];
  const allow = [...allowed, ...(allowed.includes('GET') ? ['HEAD'] : [])].join(', ');
  for (const method of allowed) {
    const handler = handlers[method];
    if (!handler) continue;
    app.route<RouteTypes>({ method, url, handler, ...(opts.onRequest ? { onRequest: opts.onRequest } : {}), config: opts.config ?? {} });
  }
  const missing = notImplementedMethods(url);
  for (const [method, name] of missing ?? []) {
    if (allowed.includes(method)) continue;
    app.route({
      method,
      url,
      ...(opts.onRequest ? { onRequest: opts.onRequest } : {}),
      handler: async () => {
        throw graphErrors.notImplemented({ feature: name });
      },
    });
  }
  const others = ALL.filter((m) => !allowed.includes(m) && !missing?.has(m));
  if (others.length) {
    app.route({
      method: others,
      url,
      handler: async (req) => {
        throw graphErrors.methodNotAllowed({ method: req.method, allow });
      },
    });
  }
}
