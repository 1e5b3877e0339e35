import type { FastifyRequest } from 'fastify';
import { cloudOfPath } from '../auth/clouds.js';
import '../http/traffic-context.js';

/** The Graph path after the cloud prefix and version ("/communications/calls/abc"), or undefined if the URL is not a Graph path. */
export function graphPathOf(url: string): string | undefined {
  // Asked on every request: index arithmetic rather than split and regular expressions.
  const q = url.indexOf('?');
  const { rest } = cloudOfPath(q === -1 ? url : url.slice(0, q));
  if (!rest.startsWith('/v1.0') && !rest.startsWith('/beta')) return undefined;
  // Both versions are 5 characters long ("/v1.0", "/beta"); what follows must start a segment.
  if (rest.length > 5 && rest.charCodeAt(5) !== SLASH) return undefined;
  let end = rest.length;
  while (end > 5 && rest.charCodeAt(end - 1) === SLASH) end--;
  return end > 5 ? rest.slice(5, end) : '/';
}

const SLASH = 47;

/** graphPathOf the request's URL, worked out once per request (the journal and the faults both ask). */
export function graphPathOfRequest(req: FastifyRequest): string | undefined {
  if (req.graphPath === undefined) req.graphPath = graphPathOf(req.url) ?? null;
  return req.graphPath ?? undefined;
}
