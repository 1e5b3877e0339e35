import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler, onRequestHookHandler } from 'fastify';
import { graphErrors } from '../errors/graph-errors.js';
import { graphRouteLabels } from './graph-roots.js';
import { notImplementedMethods } from './not-implemented-routes.js';
import { addResource, METHODS, type Method } from './wrong-method.js';

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
 * Registers a path's handlers, and answers every other method with Graph's error rather than a
 * framework 404: a method Graph documents on the path but callkeeper does not implement
 * (not-implemented-routes.ts) gets 501, after the path's hooks (the token check), from a route
 * of its own; the rest get 405 with `Allow` from the app's wrong-method table (wrong-method.ts),
 * which costs no route per method.
 */
export function resource(app: FastifyInstance, url: string, handlers: Partial<Record<Method, Handler>>, opts: ResourceOptions = {}): void {
  const allowed = Object.keys(handlers) as Method[];
  const allow = [...allowed, ...(allowed.includes('GET') ? ['HEAD'] : [])].join(', ');
  const graphLabels = graphRouteLabels(url);
  const labels = graphLabels ? { graphLabels } : {};
  for (const method of allowed) {
    const handler = handlers[method];
    if (!handler) continue;
    app.route<RouteTypes>({
      method,
      url,
      handler,
      ...(opts.onRequest ? { onRequest: opts.onRequest } : {}),
      config: { ...opts.config, ...labels },
    });
  }
  const others = METHODS.filter((m) => !allowed.includes(m));
  const missing = notImplementedMethods(url);
  const unimplemented = others.filter((m) => missing?.has(m));
  if (missing && unimplemented.length > 0) {
    app.route({
      method: unimplemented,
      url,
      ...(opts.onRequest ? { onRequest: opts.onRequest } : {}),
      config: labels,
      handler: async (req) => {
        // HEAD is served as GET (Fastify's HEAD route of the GET it belongs to).
        const method = req.method === 'HEAD' ? 'GET' : (req.method as Method);
        throw graphErrors.notImplemented({ feature: missing.get(method) ?? method });
      },
    });
  }
  addResource(app, url, [...allowed, ...unimplemented], allow, graphLabels);
}
