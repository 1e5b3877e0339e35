import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../clock/clock.js';
import { graphPathOfRequest } from '../faults/graph-path.js';
import '../http/traffic-context.js';
import type { RequestJournal } from './request-journal.js';

/**
 * Records every inbound Graph request (any /v1.0 or /beta path, answered or not) in the
 * journal once its response is sent. Returns the recorder, for requests whose connection a
 * fault cuts before any response.
 */
export function registerJournalHooks(app: FastifyInstance, journal: RequestJournal, clock: Clock) {
  app.decorateRequest('arrivedAt', 0);
  app.decorateRequest('fault', null);
  app.decorateRequest('journaled', false);
  app.decorateRequest('graphPath', undefined);

  const record = (req: FastifyRequest, status: number | null, latencyMs: number) => {
    if (req.journaled) return;
    if (graphPathOfRequest(req) === undefined) return;
    const q = req.url.indexOf('?');
    const path = q === -1 ? req.url : req.url.slice(0, q);
    req.journaled = true;
    const params = req.params as { id?: unknown } | undefined;
    const callId = typeof params?.id === 'string' ? params.id.slice(0, 200) : null;
    const appended = journal.record({
      at: req.arrivedAt,
      method: req.method,
      path: path.slice(0, 500),
      status,
      latencyMs: Math.round(latencyMs * 100) / 100,
      appId: req.principal?.appId ?? null,
      callId,
      requestId: req.id,
      clientRequestId: req.clientRequestId,
      fault: req.fault,
    });
    appended?.catch((err: unknown) => req.log.warn({ err }, 'recording a request in the journal failed'));
  };

  app.addHook('onRequest', (req, _reply, done) => {
    req.arrivedAt = clock.now();
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    record(req, reply.statusCode, reply.elapsedTime);
    done();
  });
  return record;
}
