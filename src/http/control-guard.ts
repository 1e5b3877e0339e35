import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { graphErrors } from '../errors/graph-errors.js';

/** The header a control request carries the control token in. */
export const CONTROL_TOKEN_HEADER = 'x-callkeeper-control-token';

/** Paths the guard protects by default: the whole control API. */
export const CONTROL_PREFIX = '/_callkeeper';

export interface ControlGuardOptions {
  /**
   * The shared secret control requests must carry in `x-callkeeper-control-token`. When set it is
   * always required; when unset the control API answers only loopback clients of a loopback-bound
   * server (and refuses everything else with 403).
   */
  token?: string | undefined;
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x). */
export function isLoopbackAddress(address: string | undefined | null): boolean {
  if (!address) return false;
  const a = address.toLowerCase().replace(/^\[|\]$/g, '');
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** The host part of a Host header (`[::1]:4545` → `::1`, `localhost:80` → `localhost`). */
function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') === -1 ? undefined : h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return (colon === -1 ? h : h.slice(0, colon)).replace(/\.$/, '');
}

/**
 * A Host a DNS-rebinding page cannot produce: `localhost` or an IP literal. Rebinding needs a
 * name the attacker controls resolving to 127.0.0.1; the browser then sends that name as Host.
 */
export function isSafeHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = hostName(host);
  return name === 'localhost' || isIP(name) !== 0;
}

const JSON_TYPE = /^application\/([\w.+-]+\+)?json(\s*;.*)?$/i;

/** Whether the request may carry a body: a length other than 0, or chunked. */
function hasBody(req: FastifyRequest): boolean {
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined) return true;
  return length !== undefined && length !== '0';
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * The control plane's guard, an onRequest hook (see docs/security.md). It refuses, in order:
 * - a browser's cross-site request (`Sec-Fetch-Site: cross-site`) or a foreign `Origin`
 *   (one whose host:port is not the request's `Host`): 403;
 * - a `Host` other than `localhost` or an IP literal, unless the right control token is sent
 *   (DNS rebinding): 403;
 * - a missing or wrong control token when one is configured, or when the server is bound to a
 *   non-loopback address or the client is not on loopback: 401 (403 when no token is configured);
 * - a body, or a content type, other than JSON: 415. Form and text bodies are what a web page
 *   can send without a CORS preflight; JSON is not.
 * A route whose config has `controlPublic: true` (the health probe) skips the token rules only.
 * Reuse it for any route that changes or reveals state (`app.addHook('onRequest', guard)`).
 */
export function controlGuard(opts: ControlGuardOptions = {}): onRequestAsyncHookHandler {
  const expected = opts.token === undefined || opts.token === '' ? undefined : digest(opts.token);
  return async (req: FastifyRequest, _reply: FastifyReply) => {
    const host = req.headers.host;
    if (req.headers['sec-fetch-site'] === 'cross-site')
      throw graphErrors.controlForbidden({ reason: 'cross-site browser requests are refused' });
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let originHost: string | undefined;
      try {
        originHost = new URL(origin).host;
      } catch {
        originHost = undefined;
      }
      if (originHost === undefined || host === undefined || originHost.toLowerCase() !== host.toLowerCase()) {
        throw graphErrors.controlForbidden({ reason: `the Origin '${origin.slice(0, 100)}' is not this server` });
      }
    }
    const sent = req.headers[CONTROL_TOKEN_HEADER];
    const tokenOk = expected !== undefined && typeof sent === 'string' && timingSafeEqual(digest(sent), expected);
    if (!tokenOk && !isSafeHost(host)) {
      throw graphErrors.controlForbidden({ reason: `the Host '${String(host ?? '').slice(0, 100)}' is not a loopback name or an address` });
    }
    // A liveness probe (route config `controlPublic`) needs no token: it reveals no secret.
    const isPublic = (req.routeOptions.config as { controlPublic?: boolean } | undefined)?.controlPublic === true;
    // Not listening (inject) counts as loopback; the client's own address still counts.
    const exposed = !isPublic && (!isLoopbackBinding(req.server.server.address()) || !isLoopbackAddress(req.socket.remoteAddress));
    if (expected === undefined && exposed) {
      throw graphErrors.controlForbidden({
        reason:
          'the server is reachable from the network; start it with --control-token (or CALLKEEPER_CONTROL_TOKEN) to use the control API',
      });
    }
    if (expected !== undefined && !tokenOk && !isPublic) throw graphErrors.controlTokenRequired({ header: CONTROL_TOKEN_HEADER });
    const type = req.headers['content-type'];
    if (type !== undefined ? !JSON_TYPE.test(type) : hasBody(req)) {
      throw graphErrors.unsupportedMediaType({ contentType: String(type ?? '').slice(0, 100) });
    }
  };
}

/** Whether a URL is on the control API. */
export function isControlPath(url: string): boolean {
  return url === CONTROL_PREFIX || url.startsWith(`${CONTROL_PREFIX}/`) || url.startsWith(`${CONTROL_PREFIX}?`);
}

/** Whether a listening server's address (`server.address()`) is loopback only. */
export function isLoopbackBinding(address: string | { address: string } | null): boolean {
  return address === null || typeof address === 'string' || isLoopbackAddress(address.address);
}

/** The URL of what a server is actually bound to (`http://0.0.0.0:4545`, `http://[::1]:4545`). */
export function boundUrl(scheme: 'http' | 'https', address: string | { address: string; port: number } | null, fallback: string): string {
  if (address === null || typeof address === 'string') return fallback;
  const host = isIP(address.address) === 6 ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}
