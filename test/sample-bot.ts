import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';

export interface Notification {
  changeType: string;
  resourceUrl: string;
  resourceData: Record<string, unknown> | Record<string, unknown>[];
}

/**
 * A loopback stand-in for a calling bot built like Microsoft's samples: it validates each
 * notification's JWT against callkeeper's published OpenID keys (issuer, audience = its app id,
 * lifetime on the server's virtual clock), answers 403 to a bad one and 202 to a good one, and
 * hands good ones to the flow under test, which acts on them over Graph as a real bot would.
 */
export class SampleBot {
  readonly received: Notification[] = [];
  rejected = 0;
  private readonly events = new EventEmitter();
  private server: Server | undefined;
  private handler: (n: Notification) => Promise<void> = async () => {};
  private pending = new Set<Promise<void>>();
  private failure: unknown;
  port = 0;

  constructor(
    private readonly graphBase: string,
    private readonly appId: string,
    private readonly now: () => number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/api/calls`;
  }

  /** What the bot does with each valid notification (it may call Graph). */
  on(handler: (n: Notification) => Promise<void>): void {
    this.handler = handler;
  }

  async start(): Promise<this> {
    const config = (await (await fetch(`${this.graphBase}/botframework/v1/.well-known/openidconfiguration`)).json()) as {
      issuer: string;
      jwks_uri: string;
    };
    const jwks = createRemoteJWKSet(new URL(config.jwks_uri));
    this.server = createServer((req, res) => {
      void this.accept(req, config.issuer, jwks).then((status) => {
        res.statusCode = status;
        res.end();
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  private async accept(req: IncomingMessage, issuer: string, jwks: ReturnType<typeof createRemoteJWKSet>): Promise<number> {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    const auth = req.headers.authorization ?? '';
    try {
      await jwtVerify(auth.replace(/^Bearer /, ''), jwks, { issuer, audience: this.appId, currentDate: new Date(this.now()) });
    } catch {
      this.rejected++;
      return 403;
    }
    const body = JSON.parse(text) as { value: Notification[] };
    for (const n of body.value) {
      this.received.push(n);
      const acting = this.handler(n).catch((err: unknown) => {
        this.failure = err;
      });
      this.pending.add(acting);
      void acting.finally(() => {
        this.pending.delete(acting);
        this.events.emit('change');
      });
    }
    this.events.emit('change');
    return 202;
  }

  /**
   * Waits until `condition` holds, moving things along with `pump` (deliver what is due, advance
   * the clock) between the bot's reactions; event-driven, with a generous wall-clock bound.
   */
  async until(condition: () => boolean, pump: () => Promise<void>, what: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!condition()) {
      if (this.failure) throw this.failure;
      if (Date.now() > deadline) throw new Error(`the bot never saw: ${what}`);
      await Promise.all(this.pending);
      await pump();
      if (condition()) break;
      if (this.pending.size) continue;
      await Promise.race([once(this.events, 'change'), new Promise((r) => setTimeout(r, 50))]);
    }
    if (this.failure) throw this.failure;
  }

  /** The notifications so far, one line each, for asserting order. */
  timeline(callId: string): string[] {
    const call = `/communications/calls/${callId}`;
    return this.received
      .filter((n) => n.resourceUrl.startsWith(call))
      .map((n) => {
        const sub = n.resourceUrl.slice(call.length);
        if (Array.isArray(n.resourceData)) return `roster: ${n.resourceData.map(nameOf).join(', ')}`;
        const d = n.resourceData;
        if (sub.startsWith('/operations/')) return `${String(d['@odata.type']).replace('#microsoft.graph.', '')} ${String(d.status)}`;
        const tone = d.toneInfo as { tone?: string } | undefined;
        return tone ? `tone ${tone.tone}` : `${n.changeType}/${String(d.state)}`;
      });
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function nameOf(p: Record<string, unknown>): string {
  const identity = (p.info as { identity?: Record<string, { displayName?: string; id?: string }> } | undefined)?.identity ?? {};
  const who = identity.user ?? identity.phone ?? identity.guest;
  const name = identity.application ? 'bot' : (who?.displayName ?? who?.id ?? '?');
  const flags = [p.isMuted ? 'muted' : '', (p.recordingInfo as { recordingStatus?: string } | undefined)?.recordingStatus ?? '']
    .filter(Boolean)
    .join(' ');
  return `${name}${flags ? ` (${flags})` : ''}`;
}
