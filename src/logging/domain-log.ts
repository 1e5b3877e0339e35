import type { Logger } from 'pino';
import type { CallObserver, ChangeType, KeptAlive, RequestCause } from '../calls/call-events.js';
import { type CallSummary, isPolicyRecording } from '../calls/call-types.js';
import type { OperationRecord } from '../calls/operations.js';
import type { DeliveryAttempt, OutboxEntry } from '../store/call-store.js';

/** The part of a pino logger domain events need. */
export type DomainLogger = Pick<Logger, 'info' | 'warn' | 'isLevelEnabled'>;

const isTimeout = (c: CallSummary) => c.resultInfo?.code === 408 && c.resultInfo.subcode === 8537;
const isUnanswered = (c: CallSummary) => c.resultInfo?.code === 408 && c.resultInfo.subcode === 10057;

/** The request's ids, when a request caused the event; nothing for what time or delivery does. */
const ids = (cause: RequestCause | undefined) => (cause ? { requestId: cause.requestId, clientRequestId: cause.clientRequestId } : {});

/**
 * Domain events in the log, through callkeeper's one logger, each with an `event` name, the
 * call id, app id and tenant, and, when a request caused it, that request's `requestId` (as on
 * Fastify's request lines and in the `request-id` header) and `clientRequestId`:
 * at info a call created, rung, answered, established, kept alive, ended with its result; an
 * operation started or completed; a notification delivered after retries. At warn a keepAlive
 * timeout, an incoming call left unanswered, a notification failed or dead-lettered. `--log-format json` lines can be filtered by
 * event (README, "Metrics and logs").
 */
export class DomainLog implements CallObserver {
  constructor(private readonly log: DomainLogger) {}

  onCallChanged(call: CallSummary, change: ChangeType, cause?: RequestCause): void {
    const base = { callId: call.id, appId: call.owner.appId, tenantId: call.owner.tenantId, ...ids(cause) };
    if (change === 'created') {
      if (call.direction === 'incoming') {
        const recording = isPolicyRecording(call.resource ?? {}) ? { policyBasedRecording: true } : {};
        this.log.info({ event: 'call.incoming', ...base, deadline: call.deadline, ...recording }, 'incoming call rung');
      } else this.log.info({ event: 'call.created', ...base }, 'call created');
      return;
    }
    if (change === 'updated') {
      // An update to establishing is only ever an answer: outgoing calls are created establishing.
      if (call.state === 'establishing') this.log.info({ event: 'call.answered', ...base }, 'incoming call answered');
      else if (call.state === 'established') this.log.info({ event: 'call.established', ...base }, 'call established');
      return;
    }
    if (call.state !== 'terminated') return;
    if (isTimeout(call)) {
      this.log.warn(
        { event: 'call.keepAliveTimeout', ...base, resultInfo: call.resultInfo, lastKeepAliveAt: call.lastKeepAliveAt },
        'call ended: no keepAlive in time (408/8537)',
      );
    }
    if (isUnanswered(call)) {
      // A bot that misses its answer window (15 s; 5 s for a policy-based recording bot) loses the call.
      this.log.warn(
        { event: 'call.unanswered', ...base, resultInfo: call.resultInfo, policyBasedRecording: isPolicyRecording(call.resource ?? {}) },
        'incoming call ended unanswered (408/10057)',
      );
    }
    this.log.info({ event: 'call.ended', ...base, resultInfo: call.resultInfo }, 'call ended');
  }

  onKeptAlive(call: KeptAlive, cause?: RequestCause): void {
    // The hot path: build nothing unless it is written.
    if (!this.log.isLevelEnabled('info')) return;
    this.log.info(
      {
        event: 'call.keepAlive',
        callId: call.id,
        appId: call.owner.appId,
        tenantId: call.owner.tenantId,
        ...ids(cause),
        deadline: call.deadline,
      },
      'call kept alive',
    );
  }

  operation(op: OperationRecord, how: 'started' | 'stepped', cause?: RequestCause): void {
    const base = {
      callId: op.callId,
      operationId: op.id,
      kind: op.kind,
      status: op.status,
      clientContext: op.clientContext,
      ...ids(cause),
    };
    if (how === 'started') this.log.info({ event: 'operation.started', ...base }, 'operation started');
    else if (op.status !== 'running')
      this.log.info({ event: 'operation.completed', ...base, resultInfo: op.resultInfo }, 'operation completed');
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
    if (a.outcome === 'retry') this.log.warn({ event: 'notification.failed', ...base }, 'notification failed; it will be retried');
    else if (a.outcome === 'dead') this.log.warn({ event: 'notification.deadLettered', ...base }, 'notification dead-lettered');
    else if (a.attempt > 1) this.log.info({ event: 'notification.retried', ...base }, 'notification delivered after retries');
  }
}
