/** The reference: a bare node:http server answering every request 200 with an empty body. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChildReply, ParentMessage } from './child-protocol.js';

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '0' });
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  const send = (m: ChildReply) => process.send?.(m);
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'stats') {
      const cpu = process.cpuUsage();
      send({ type: 'stats', rss: process.memoryUsage().rss, now: Date.now(), expired: 0, cpuUs: cpu.user + cpu.system });
    }
  });
  send({ type: 'ready', url: `http://127.0.0.1:${port}` });
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
