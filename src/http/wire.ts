import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Clock, safeIso, wallTime } from '../clock/clock.js';
import { errorBody, GraphError, graphErrors } from '../errors/graph-errors.js';
import { StoreUnavailableError } from '../store/store-errors.js';
import { sanitizeClientRequestId } from './request-context.js';

/** An epoch-ms time as ISO 8601, or null: how the control API shows times. */
export const iso = (t: number | null): string | null => (t === null ? null : safeIso(t));

/** The content type Graph answers JSON with. */
export const GRAPH_JSON = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

/** Graph's diagnostic header (every Graph response carries it; docs/decisions.md, Instance names); the values name this server. */
export function diagnosticHeader(instance: string): string {
  return JSON.stringify({ ServerInfo: { DataCenter: 'callkeeper', Slice: 'E', Ring: '5', ScaleUnit: '000', RoleInstance: instance } });
}

/** Headers every Graph response carries. `Date` Node adds itself. */
export function setWireHeaders(req: FastifyRequest, reply: FastifyReply, diagnostic: string): void {
  if (!req.clientRequestId) req.clientRequestId = sanitizeClientRequestId(req.headers['client-request-id'], req.id);
  reply.header('request-id', req.id);
  reply.header('client-request-id', req.clientRequestId);
  reply.header('x-ms-ags-diagnostic', diagnostic);
  reply.header('strict-transport-security', 'max-age=31536000');
  reply.header('cache-control', 'private');
}

/** Maps anything thrown while handling a request to the Graph error to answer with. */
export function toGraphError(err: unknown, bodyLimit: number): GraphError {
  if (err instanceof GraphError) return err;
  if (err instanceof StoreUnavailableError) return graphErrors.unavailable();
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return graphErrors.payloadTooLarge({ limit: String(bodyLimit) });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return graphErrors.unsupportedMediaType({ contentType: '' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return graphErrors.invalidJson();
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return graphErrors.invalidRequest({ detail: 'The Content-Length header does not match the request body.' });
    case 'FST_ERR_BAD_URL':
      return graphErrors.badUrl();
  }
  if (e.statusCode === 413) return graphErrors.payloadTooLarge({ limit: String(bodyLimit) });
  if (e.statusCode === 415) return graphErrors.unsupportedMediaType({ contentType: '' });
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return graphErrors.invalidRequest({ detail: e.message ?? 'The request is invalid.' });
  }
  return graphErrors.internal();
}

/** Answers with a Graph error. It must not throw: it is what every error path ends in. */
export function sendGraphError(req: FastifyRequest, reply: FastifyReply, err: GraphError, clock: Clock, diagnostic: string): void {
  let now: number;
  try {
    now = clock.now();
  } catch {
    now = wallTime();
  }
  try {
    setWireHeaders(req, reply, diagnostic);
    reply
      .code(err.status)
      .headers(err.headers)
      .type('application/json')
      .send(errorBody(err, { now, requestId: req.id, clientRequestId: req.clientRequestId }));
  } catch (e) {
    req.log.error({ err: e }, 'could not send an error response');
    if (!reply.sent) reply.raw.destroy();
  }
}

/**
 * Answers requests Node's HTTP parser rejects before Fastify sees them (oversized headers,
 * broken request lines) with a Graph error instead of a bare status line.
 */
export function clientErrorResponder(clock: Clock) {
  // Runs outside any request: a throw here is an uncaught exception that ends the process.
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    try {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const g =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? graphErrors.headersTooLarge()
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? graphErrors.requestTimeout()
            : graphErrors.badUrl();
      const id = randomUUID();
      const body = JSON.stringify(errorBody(g, { now: clock.now(), requestId: id, clientRequestId: id }));
      socket.end(
        `HTTP/1.1 ${g.status} ${STATUS_CODES[g.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nrequest-id: ${id}\r\nclient-request-id: ${id}\r\nConnection: close\r\n\r\n${body}`,
      );
    } catch {
      socket.destroy();
    }
  };
}
