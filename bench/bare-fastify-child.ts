/**
 * A second reference: a bare Fastify app (no hooks, no logger) whose one route answers the
 * keepAlive 200 with an empty body. Beside bare node:http it shows what the framework itself
 * costs, a share of callkeeper's gap that no change inside callkeeper can close.
 */
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { serveReference } from './child-protocol.js';

const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
app.post('/v1.0/communications/calls/:id/keepAlive', async (_req, reply) => reply.code(200).type('text/plain').send(''));
await app.listen({ host: '127.0.0.1', port: 0 });
serveReference((app.server.address() as AddressInfo).port);
process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
