import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import { routeLabel } from '../http/graph-roots.js';
import { resource } from '../http/resource.js';
import type { CallkeeperMetrics } from './metrics.js';

/**
 * GET /metrics (Prometheus text format), behind the control guard like the control API: it
 * is served to loopback clients with a loopback Host, or to anyone with the control token.
 * Every answered request is counted (by route pattern) once its response is sent.
 */
export function registerMetrics(app: FastifyInstance, metrics: CallkeeperMetrics, guard: onRequestAsyncHookHandler): void {
  app.addHook('onResponse', (req, reply, done) => {
    metrics.request(routeLabel(req), req.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  resource(
    app,
    '/metrics',
    { GET: async (_req, reply) => reply.type(metrics.contentType).send(await metrics.text()) },
    { onRequest: guard },
  );
}
