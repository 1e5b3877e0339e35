import type { FastifyRequest } from 'fastify';
import { cloudOfPath } from '../auth/clouds.js';
import '../http/traffic-context.js';

/** The Graph path after the cloud prefix and version ("/communications/calls/abc"), or undefined if the URL is not a Graph path. */
export function graphPathOf(url: string): string | undefined {
  const { rest } = cloudOfPath(url.split('?')[0] ?? '');
  const m = /^\/(v1\.0|beta)(\/.*)?$/.exec(rest);
  if (!m) return undefined;
  return (m[2] ?? '/').replace(/\/+$/, '') || '/';
}

/** graphPathOf the request's URL, worked out once per request (the journal and the faults both ask). */
export function graphPathOfRequest(req: FastifyRequest): string | undefined {
  if (req.graphPath === undefined) req.graphPath = graphPathOf(req.url) ?? null;
  return req.graphPath ?? undefined;
}
