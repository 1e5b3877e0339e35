import type { FastifyInstance } from 'fastify';
import sjson from 'secure-json-parse';
import { graphErrors } from '../errors/graph-errors.js';

/**
 * Replaces Fastify's parsers so that every body problem is a Graph error: an empty body is
 * "no body" whatever its content type (the Graph JS client sends keepAlive as
 * `Content-Type: application/json` with `Content-Length: 0`); JSON goes through
 * secure-json-parse (no prototype pollution); form bodies are for the token endpoint.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(/^application\/([\w.+-]+\+)?json(\s*;.*)?$/i, { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch {
      done(graphErrors.invalidJson(), undefined);
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    if ((body as Buffer).length === 0) return done(null, undefined);
    done(graphErrors.unsupportedMediaType({ contentType: String(req.headers['content-type'] ?? '').slice(0, 100) }), undefined);
  });
}
