import type { FastifyInstance } from 'fastify';
import type { CallObserver, ChangeType } from '../calls/call-events.js';
import type { CallRecord } from '../calls/call-types.js';
import type { DeliveryAttempt, OutboxEntry } from '../store/call-store.js';

/** The part of a pino logger domain events need. */
export interface DomainLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const isTimeout = (c: CallRecord) => c.resultInfo?.code === 408 && c.resultInfo.subcode === 8537;

/**
 * Domain events in the log, at info (a call created, ended with its result, a notification
 * delivered after retries) and warn (a keepAlive timeout, a notification failed or
 * dead-lettered), each with an `event` name and the call id (and the Graph request-id when a
 * request caused it), so `--log-format json` lines can be filtered by event.
 */
export class DomainLog implements CallObserver {
  constructor(private readonly log: () => DomainLogger) {}

  onCallChanged(call: CallRecord, change: ChangeType): void {
    const base = { callId: call.id, appId: call.owner.appId, tenantId: call.owner.tenantId };
    if (change === 'created' && call.direction === 'incoming') this.log().info({ event: 'call.incoming', ...base }, 'incoming call rung');
    if (change !== 'deleted' || call.state !== 'terminated') return;
    if (isTimeout(call)) {
      this.log().warn(
        { event: 'call.keepAliveTimeout', ...base, resultInfo: call.resultInfo, lastKeepAliveAt: call.lastKeepAliveAt },
        'call ended: no keepAlive in time (408/8537)',
      );
    }
    this.log().info({ event: 'call.ended', ...base, resultInfo: call.resultInfo }, 'call ended');
  }

  delivery(e: OutboxEntry, a: DeliveryAttempt): void {
    const base = {
      callId: e.callId,
      seq: e.seq,
      transition: e.fact.transition,
      callbackUri: e.callbackUri,
      attempt: a.attempt,
      statusCode: a.statusCode,
      error: a.error,
    };
    if (a.outcome === 'retry') this.log().warn({ event: 'notification.failed', ...base }, 'notification failed; it will be retried');
    else if (a.outcome === 'dead') this.log().warn({ event: 'notification.deadLettered', ...base }, 'notification dead-lettered');
    else if (a.attempt > 1) this.log().info({ event: 'notification.retried', ...base }, 'notification delivered after retries');
  }
}

/** Logs each created call with the request-id of the request that created it. */
export function logCreatedCalls(app: FastifyInstance): void {
  app.addHook('onResponse', async (req, reply) => {
    if (req.method !== 'POST' || reply.statusCode !== 201 || !/\/communications\/calls$/.test(req.routeOptions.url ?? '')) return;
    const location = String(reply.getHeader('location') ?? '');
    const callId = location.slice(location.lastIndexOf('/') + 1);
    req.log.info(
      { event: 'call.created', callId, requestId: req.id, clientRequestId: req.clientRequestId, appId: req.principal?.appId },
      'call created',
    );
  });
}
