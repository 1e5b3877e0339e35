import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler, onRequestHookHandler } from 'fastify';
import { graphErrors } from '../errors/graph-errors.js';
import { graphRouteLabels } from './graph-roots.js';
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
 * path's hooks (the token check), instead. The other methods share one route (each method a
 * route of its own was most of the cost of building the app).
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
  const others = ALL.filter((m) => !allowed.includes(m));
  if (!others.length) return;
  const missing = notImplementedMethods(url);
  // HEAD is served as GET (Fastify's HEAD route of the GET it belongs to).
  const methodOf = (req: FastifyRequest) => (req.method === 'HEAD' ? 'GET' : (req.method as Method));
  const auth = opts.onRequest;
  const unimplemented = missing && others.some((m) => missing.has(m)) ? missing : undefined;
  // The token check runs for the methods answered 501 only, as when each had its own route.
  const gate: onRequestHookHandler | undefined =
    auth && unimplemented
      ? function (this: FastifyInstance, req, reply, done) {
          if (!unimplemented.has(methodOf(req))) return done();
          if (auth.length < 3) {
            (auth as onRequestAsyncHookHandler).call(this, req, reply).then(() => done(), done);
            return;
          }
          (auth as onRequestHookHandler).call(this, req, reply, done);
        }
      : undefined;
  app.route({
    method: others,
    url,
    ...(gate ? { onRequest: gate } : {}),
    config: labels,
    handler: async (req) => {
      const name = unimplemented?.get(methodOf(req));
      if (name !== undefined) throw graphErrors.notImplemented({ feature: name });
      throw graphErrors.methodNotAllowed({ method: req.method, allow });
    },
  });
}
