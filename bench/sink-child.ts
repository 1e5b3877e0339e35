/**
 * The bot's callback endpoint, on loopback: answers every notification 202 (as bots do,
 * https://learn.microsoft.com/graph/api/resources/commsnotifications) and counts them. Every
 * call the bench creates or seeds points its callbackUri here, so no notification ever leaves
 * the machine.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChildReply, ParentMessage } from './child-protocol.js';

let received = 0;
// --hang: a bot that takes every notification and never answers (the worst callback there is).
const hang = process.argv.includes('--hang');
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received++;
    if (hang) return;
    res.writeHead(202, { 'content-length': '0' });
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  const send = (m: ChildReply) => process.send?.(m);
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'received') send({ type: 'received', count: received });
  });
  send({ type: 'ready', url: `http://127.0.0.1:${port}` });
});
process.once('SIGTERM', () => process.exit(0));
