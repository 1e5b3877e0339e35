import { lookup } from 'node:dns/promises';
import { createServer, type Server } from 'node:https';
import { networkInterfaces } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../clock/clock.js';
import { type ConnectionLimits, DEFAULT_LIMITS, nodeHttpOptions } from './app.js';
import { boundUrl } from './control-guard.js';
import { clientErrorResponder } from './wire.js';

export interface TlsListener {
  /** Listens for https on host:port; resolves with the address bound (https://host:port). */
  listen(host: string, port: number): Promise<string>;
}

/**
 * Serves https from the http app itself (`app.routing`, Fastify's documented entry to its
 * router): one app, one set of routes and hooks for both schemes, where building a second app
 * for https doubled the cost of every start (docs/architecture.md).
 * `req.protocol` is per connection (the socket is encrypted or not). Each https server gets
 * the limits the app's own http server has (docs/security.md) and the same client-error
 * answers; `app.close()` closes them with it, in-flight requests finishing first.
 * Must be attached before the app is ready (it adds close hooks).
 */
export function attachTls(
  app: FastifyInstance,
  material: { key: string; cert: string },
  clock: Clock,
  limits: ConnectionLimits = DEFAULT_LIMITS,
): TlsListener {
  const servers: Server[] = [];
  let closed: Promise<unknown> | undefined;
  const serverOptions = { ...nodeHttpOptions(limits), key: material.key, cert: material.cert };
  const newServer = (): Server => {
    const server = createServer(serverOptions, (req, res) => app.routing(req, res));
    // What Fastify sets on the servers it creates (lib/server.js), from the same limits.
    server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    server.requestTimeout = limits.requestTimeoutMs;
    server.setTimeout(limits.idleSocketTimeoutMs);
    server.maxConnections = limits.maxConnections;
    server.on('clientError', clientErrorResponder(clock));
    return server;
  };
  const bind = (server: Server, host: string, port: number) =>
    new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        server.removeListener('listening', ok);
        reject(err);
      };
      const ok = () => {
        server.removeListener('error', fail);
        resolve();
      };
      server.once('error', fail);
      server.once('listening', ok);
      server.listen({ host, port });
    });

  app.addHook('preClose', (done) => {
    // Started with the http server's close, so both drain at once.
    closed = Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    done();
  });
  app.addHook('onClose', async () => {
    await closed;
  });

  return {
    async listen(host, port) {
      await app.ready();
      if (closed) throw new Error('the app is closed');
      const main = newServer();
      await bind(main, host, port);
      servers.push(main);
      const address = main.address();
      if (address === null || typeof address === 'string') return `https://${String(address)}`;
      // As Fastify does for 'localhost': every address it resolves to, on the same port.
      if (host === 'localhost') {
        const all = await lookup(host, { all: true }).catch(() => []);
        for (const a of all) {
          if (a.address === address.address) continue;
          const secondary = newServer();
          try {
            await bind(secondary, a.address, address.port);
            servers.push(secondary);
          } catch {
            // Not blocking the main server, as Fastify's secondary bindings.
          }
        }
      }
      const urls = listeningUrls(address);
      for (const url of urls) app.log.info(`Server listening at ${url}`);
      return boundUrl('https', address, urls[0] as string);
    },
  };
}

/** The URLs Fastify logs for a bound address (0.0.0.0: each IPv4 interface). */
function listeningUrls(address: { address: string; port: number }): string[] {
  if (address.address.includes(':')) return [`https://[${address.address}]:${address.port}`];
  const hosts =
    address.address === '0.0.0.0'
      ? Object.values(networkInterfaces())
          .flatMap((i) => i ?? [])
          .filter((i) => i.family === 'IPv4')
          .sort((i) => (i.internal ? -1 : 1))
          .map((i) => i.address)
      : [address.address];
  return hosts.map((h) => `https://${h}:${address.port}`);
}
