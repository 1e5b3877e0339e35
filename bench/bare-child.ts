/** The reference: a bare node:http server answering every request 200 with an empty body. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveReference } from './child-protocol.js';

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '0' });
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  serveReference((server.address() as AddressInfo).port);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
