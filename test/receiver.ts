import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: IncomingMessage['headers'];
  body: {
    '@odata.type': string;
    value: {
      '@odata.type': string;
      changeType: string;
      resource: string;
      resourceUrl: string;
      resourceData: Record<string, unknown> & { state: string };
    }[];
  };
}

/** A real HTTP server standing in for a bot's callback endpoint; it records what arrives. */
export class Receiver {
  readonly received: Received[] = [];
  /** Headers of every request that arrived, answered 2xx or not. */
  readonly arrivals: IncomingMessage['headers'][] = [];
  /** What to answer: a status, or 'hang' to never answer. */
  behaviour: number | 'hang' = 202;
  private server: Server | undefined;
  private hanging: ServerResponse[] = [];
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/api/calls`;
  }

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => {
        text += c.toString();
      });
      req.on('end', () => {
        this.arrivals.push(req.headers);
        if (this.behaviour === 'hang') {
          this.hanging.push(res);
          return;
        }
        if (this.behaviour >= 200 && this.behaviour < 300)
          this.received.push({ headers: req.headers, body: JSON.parse(text) as Received['body'] });
        res.statusCode = this.behaviour;
        res.end();
      });
    });
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /**
   * Starts on a port below Linux's ephemeral range (32768-60999), where no port-0 listener of a
   * test running beside this one can be given it once this receiver stops: a test that stops
   * its bot to see the connection refused (ECONNREFUSED) got a 404 from another file's server
   * that had been handed the freed port (seen with 4 files at a time).
   */
  async startOnQuietPort(): Promise<this> {
    for (let tries = 0; ; tries++) {
      try {
        return await this.start(20_000 + Math.floor(Math.random() * 12_000));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || tries >= 20) throw err;
      }
    }
  }

  /** Closes the port: further deliveries are refused. */
  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.hanging = [];
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The states notified for a call, in arrival order, as "changeType/state". */
  statesOf(callId: string): string[] {
    return this.received
      .flatMap((r) => r.body.value)
      .filter((n) => n.resourceUrl === `/communications/calls/${callId}`)
      .map((n) => `${n.changeType}/${n.resourceData.state}`);
  }
}
