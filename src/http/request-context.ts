import type { FastifyRequest } from 'fastify';
import type { Principal } from '../auth/token-verifier.js';
import type { RequestCause } from '../calls/call-events.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller, set by the auth hook on Graph routes. */
    principal: Principal | undefined;
    /** The client's client-request-id, or our request-id when it sent none. */
    clientRequestId: string;
  }
}

/** Accept a client-request-id only if it is short and printable, as a GUID would be. */
export function sanitizeClientRequestId(value: unknown, fallback: string): string {
  return typeof value === 'string' && value.length > 0 && value.length <= 100 && /^[\x21-\x7e]+$/.test(value) ? value : fallback;
}

/** The request as the cause of what it changes: its ids go on the domain events it logs. */
export function causeOf(req: FastifyRequest): RequestCause {
  return { requestId: req.id, clientRequestId: req.clientRequestId };
}
