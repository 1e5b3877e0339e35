/**
 * A reference calling bot, small but complete: it receives Graph's notifications on a real
 * HTTP endpoint, validates their token against the published OpenID keys (answering 403 to
 * anything else), answers incoming calls, keeps every call alive with callkeeper's keeper, and
 * cleans up when a call ends: on a `terminated` notification or on a keepAlive's 404.
 *
 * Run against a local callkeeper:  npx tsx examples/bot/bot.ts   (see README, "Example bot")
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { Clock } from '../../src/clock/clock.js';
import { clientCredentials, KeepAlive } from '../../src/keeper/index.js';

export interface BotOptions {
  /** Graph root, e.g. http://127.0.0.1:4545/v1.0 or https://graph.microsoft.com/v1.0 */
  graphUrl: string;
  /** Login authority, e.g. http://127.0.0.1:4545 or https://login.microsoftonline.com */
  authority: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** Where notification signing keys are described (callkeeper: /botframework/v1/.well-known/openidconfiguration). */
  openIdConfigUrl: string;
  /** Scope of the Graph tokens; default https://graph.microsoft.com/.default (the cloud's Graph resource). */
  scope?: string;
  /** Port to listen on (0: any free one), on 127.0.0.1. */
  port?: number;
  /** Time source shared with the keeper (tests pass the server's ManualClock). */
  clock?: Clock;
}

interface Notification {
  changeType: string;
  resourceUrl: string;
  resourceData: { state: string; direction?: string; resultInfo?: { code: number; subcode: number; message: string } };
}

export interface BotCall {
  id: string;
  state: string;
  direction: string;
  endedBy?: 'terminated notification' | 'keepAlive 404';
  resultInfo?: Notification['resourceData']['resultInfo'];
}

export interface Bot {
  /** The callback URL Graph posts notifications to. */
  callbackUrl: string;
  /** Every call the bot has seen, by id. */
  calls: Map<string, BotCall>;
  keeper: KeepAlive;
  /** Notifications refused for a bad token. */
  refused: number;
  /** Places an outgoing call to a user and keeps it alive. */
  call(userId: string): Promise<string>;
  /**
   * Keeps alive a call this bot placed before (say, before a restart, when its callbackUri was
   * another address): the bot learns of its end from the keepAlive's 404.
   */
  adopt(callId: string): void;
  /** Hangs up one of its calls. */
  hangUp(callId: string): Promise<void>;
  /** Settles when every notification received so far has been handled. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export async function startBot(o: BotOptions): Promise<Bot> {
  const credential = clientCredentials({
    authority: o.authority,
    tenantId: o.tenantId,
    clientId: o.clientId,
    clientSecret: o.clientSecret,
    ...(o.clock ? { clock: o.clock } : {}),
  });
  const scope = o.scope ?? 'https://graph.microsoft.com/.default';
  const token = async () => {
    const t = await credential.getToken([scope]);
    if (!t) throw new Error('no token');
    return t.token;
  };
  const keeper = new KeepAlive({ baseUrl: o.graphUrl, credential, scopes: [scope], ...(o.clock ? { clock: o.clock } : {}) });
  const config = (await (await fetch(o.openIdConfigUrl)).json()) as { issuer: string; jwks_uri: string };
  const keys = createRemoteJWKSet(new URL(config.jwks_uri));
  const calls = new Map<string, BotCall>();
  const pending = new Set<Promise<void>>();
  let refused = 0;

  const graph = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${o.graphUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${await token()}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res;
  };

  const track = (id: string) =>
    keeper.track(id, {
      onEnded: () => {
        const c = calls.get(id);
        if (c && !c.endedBy) Object.assign(c, { state: 'terminated', endedBy: 'keepAlive 404' });
      },
    });

  const handle = async (n: Notification) => {
    const id = n.resourceUrl.split('/').pop() ?? '';
    const call = calls.get(id) ?? { id, state: n.resourceData.state, direction: n.resourceData.direction ?? 'outgoing' };
    calls.set(id, call);
    call.state = n.resourceData.state;
    if (n.changeType === 'created' && n.resourceData.state === 'incoming') {
      await graph('POST', `/communications/calls/${id}/answer`, {
        callbackUri: callbackUrl,
        mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
        acceptedModalities: ['audio'],
      });
      track(id);
    } else if (n.resourceData.state === 'terminated') {
      // Clean up: stop keeping it alive; the keeper would otherwise learn it from a 404.
      keeper.untrack(id);
      call.endedBy ??= 'terminated notification';
      call.resultInfo = n.resourceData.resultInfo;
    }
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (c: Buffer) => {
      text += c.toString();
    });
    req.on('end', () => {
      const work = (async () => {
        const auth = req.headers.authorization ?? '';
        try {
          await jwtVerify(auth.replace(/^Bearer /, ''), keys, {
            issuer: config.issuer,
            audience: o.clientId,
            ...(o.clock ? { currentDate: new Date(o.clock.now()) } : {}),
          });
        } catch {
          refused++;
          res.writeHead(403).end();
          return;
        }
        res.writeHead(202).end();
        const body = JSON.parse(text) as { value: Notification[] };
        for (const n of body.value) await handle(n);
      })().catch((err: unknown) => {
        process.stderr.write(`bot: ${String(err)}\n`);
      });
      pending.add(work);
      void work.finally(() => pending.delete(work));
    });
  });
  server.listen(o.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const callbackUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/calls`;

  return {
    callbackUrl,
    calls,
    keeper,
    get refused() {
      return refused;
    },
    async call(userId) {
      const res = await graph('POST', '/communications/calls', {
        '@odata.type': '#microsoft.graph.call',
        callbackUri: callbackUrl,
        requestedModalities: ['audio'],
        mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
        targets: [{ identity: { user: { id: userId } } }],
      });
      const { id } = (await res.json()) as { id: string };
      if (!calls.has(id)) calls.set(id, { id, state: 'establishing', direction: 'outgoing' });
      track(id);
      return id;
    },
    adopt(callId) {
      if (!calls.has(callId)) calls.set(callId, { id: callId, state: 'established', direction: 'outgoing' });
      track(callId);
    },
    async hangUp(callId) {
      await graph('DELETE', `/communications/calls/${callId}`);
    },
    async settled() {
      while (pending.size) await Promise.all([...pending]);
    },
    async close() {
      await keeper.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// Run directly: a bot against a local callkeeper (plain http, the default dev app).
if (import.meta.url === `file://${process.argv[1]}`) {
  const base = process.env.CALLKEEPER_URL ?? 'http://127.0.0.1:4545';
  const bot = await startBot({
    graphUrl: `${base}/v1.0`,
    authority: base,
    tenantId: process.env.CALLKEEPER_TENANT ?? 'ca11ca11-0000-4000-8000-000000000001',
    clientId: process.env.CALLKEEPER_CLIENT_ID ?? 'ca11ca11-0000-4000-8000-00000000b075',
    clientSecret: process.env.CALLKEEPER_CLIENT_SECRET ?? 'callkeeper-dev-secret',
    openIdConfigUrl: `${base}/botframework/v1/.well-known/openidconfiguration`,
    port: Number(process.env.BOT_PORT ?? 3978),
  });
  bot.keeper.on('ended', (e) => process.stdout.write(`call ${e.callId} ended (404): cleaned up\n`));
  process.stdout.write(
    `bot listening: ${bot.callbackUrl}\nring it:  curl -X POST ${base}/_callkeeper/incoming-calls -H 'content-type: application/json' -d '{"appId":"ca11ca11-0000-4000-8000-00000000b075","callbackUri":"${bot.callbackUrl}"}'\n`,
  );
  process.once('SIGINT', () => void bot.close().then(() => process.exit(0)));
}
