import type { FastifyInstance } from 'fastify';
import sjson from 'secure-json-parse';
import { graphErrors } from '../errors/graph-errors.js';

/**
 * Replaces Fastify's parsers so that every body problem is a Graph error: an empty body is
 * "no body" whatever its content type (the Graph JS client sends keepAlive as
 * `Content-Type: application/json` with `Content-Length: 0`); JSON goes through
 * secure-json-parse (no prototype pollution); form bodies are for the token endpoint.
 */
/**
 * Deepest JSON nesting accepted. Graph bodies nest a dozen levels at most; rendering or
 * validating a body thousands of levels deep would overflow the stack (a 500).
 */
export const MAX_JSON_DEPTH = 64;

/** The nesting depth of JSON text, scanned without recursion (strings skipped). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

export function registerBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(/^application\/([\w.+-]+\+)?json(\s*;.*)?$/i, { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    if (jsonDepth(text) > MAX_JSON_DEPTH) return done(graphErrors.jsonTooDeep({ max: String(MAX_JSON_DEPTH) }), undefined);
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
