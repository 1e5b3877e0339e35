import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import { graphErrors } from '../errors/graph-errors.js';
import { type Handler, resource } from '../http/resource.js';
import { DASHBOARD_PAGE } from './dashboard-page.js';
import { DASHBOARD_SCRIPT } from './dashboard-script.js';
import type { EventHub } from './event-hub.js';

/**
 * The dashboard at / and /_callkeeper/ui, its script, and the event stream. The page and the
 * script hold no state, so they are served without the control token (still only with a
 * loopback-safe Host and no foreign Origin); the page then sends the token, if one is set, in
 * the x-callkeeper-control-token header of every request it makes, never in a URL.
 */
export function registerDashboard(app: FastifyInstance, hub: EventHub, guard: onRequestAsyncHookHandler): void {
  hub.register(app);
  const page: Handler = async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'self'; style-src 'self' 'unsafe-inline'")
      .send(DASHBOARD_PAGE);
  const open = { controlPublic: true };
  resource(app, '/', { GET: page }, { onRequest: guard, config: open });
  resource(app, '/_callkeeper/ui', { GET: page }, { config: open });
  resource(
    app,
    '/_callkeeper/ui/dashboard.js',
    { GET: async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(DASHBOARD_SCRIPT) },
    { config: open },
  );
  resource(app, '/_callkeeper/events', {
    GET: async (req, reply) => {
      if (hub.full) throw graphErrors.unavailable();
      reply.hijack();
      hub.add(reply.raw);
      req.raw.on('close', () => reply.raw.end());
    },
  });
}
