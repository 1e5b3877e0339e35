import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AppRegistration, DEFAULT_APP } from '../src/auth/apps.js';
import { ManualClock, wallTime } from '../src/clock/clock.js';
import { type Callkeeper, type CallkeeperConfig, createCallkeeper } from '../src/server.js';
import { suiteKeys } from './suite-keys.js';

export const MINUTE = 60_000;

export const OTHER_APP: AppRegistration = {
  displayName: 'another bot',
  tenantId: 'ca11ca11-0000-4000-8000-000000000002',
  clientId: 'ca11ca11-0000-4000-8000-0000000000b2',
  clientSecret: 'other-secret',
  roles: ['Calls.Initiate.All'],
};

export function callBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    '@odata.type': '#microsoft.graph.call',
    callbackUri: 'https://127.0.0.1:4/api/calls',
    requestedModalities: ['audio'],
    mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
    targets: [
      { '@odata.type': '#microsoft.graph.invitationParticipantInfo', identity: { user: { id: '8d4d8ca3-0000-4000-8000-000000000001' } } },
    ],
    ...overrides,
  };
}

export function tempDir(prefix = 'callkeeper-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface TestServer {
  ck: Callkeeper;
  clock: ManualClock;
  /** http://127.0.0.1:port */
  base: string;
  /** A fresh token for the default app (or another), from the token endpoint. */
  token(app?: AppRegistration): Promise<string>;
  /** fetch with a Bearer token of the default app. */
  graph(path: string, init?: RequestInit & { token?: string }): Promise<Response>;
  createCall(body?: Record<string, unknown>, token?: string): Promise<string>;
  /** Moves virtual time and waits until every call that became due has been handled. */
  advance(ms: number): Promise<void>;
  /** Moves the wall clock tokens live on (the server's, not the process's) forward. */
  advanceWall(ms: number): void;
  /** The server's wall time, epoch ms (Date.now() plus advanceWall). */
  wallNow(): number;
  close(): Promise<void>;
}

/** POSTs a client-credentials request to a callkeeper's token endpoint (any cloud prefix). */
export function requestToken(
  base: string,
  app: AppRegistration = DEFAULT_APP,
  scope = 'https://graph.microsoft.com/.default',
  prefix = '',
): Promise<Response> {
  return fetch(`${base}${prefix}/${app.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: app.clientId, client_secret: app.clientSecret, scope, grant_type: 'client_credentials' }),
  });
}

/** An access token from a callkeeper's token endpoint; throws unless it answers 200. */
export async function fetchToken(base: string, app: AppRegistration = DEFAULT_APP): Promise<string> {
  const res = await requestToken(base, app);
  if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

/** A test server that also listens on https, with a fresh local CA to trust (NODE_EXTRA_CA_CERTS). */
export async function startTlsServer(): Promise<TestServer & { https: string; caPath: string }> {
  const dir = tempDir();
  // Loaded here, not at the top: the certificate code (@peculiar/x509 and its ASN.1 modules) is
  // a quarter of a second of CPU in every test process that imports these helpers.
  const { loadOrCreateTls } = await import('../src/tls/certificates.js');
  const tls = await loadOrCreateTls(join(dir.path, 'tls'), wallTime(), { caKeyDir: join(dir.path, 'ca-keys') });
  const s = await startServer({ tls: { cert: tls.cert, key: tls.key } });
  const https = await s.ck.listenTls('127.0.0.1', 0);
  return {
    ...s,
    https,
    caPath: tls.caPath,
    async close() {
      await s.close();
      dir.remove();
    },
  };
}

/** A real callkeeper listening on loopback, on a ManualClock, in memory unless dataDir is given. */
export async function startServer(config: Partial<CallkeeperConfig> = {}): Promise<TestServer> {
  const clock = config.clock instanceof ManualClock ? config.clock : new ManualClock();
  let wallOffset = 0;
  const wall = config.wallTime ?? (() => Date.now() + wallOffset);
  const ck = await createCallkeeper({
    dataDir: undefined,
    logger: false,
    apps: [DEFAULT_APP, OTHER_APP],
    ...suiteKeys(config),
    ...config,
    clock,
    wallTime: wall,
  });
  const base = await ck.listen('127.0.0.1', 0);
  const token = (app: AppRegistration = DEFAULT_APP) => fetchToken(base, app);
  // Tokens expire after an hour of wall time; refresh as a bot's token cache would.
  let cached: { token: string; at: number } | undefined;
  const defaultToken = async () => {
    if (!cached || wall() - cached.at > 50 * MINUTE) cached = { token: await token(), at: wall() };
    return cached.token;
  };
  const graph = async (path: string, init: RequestInit & { token?: string } = {}) => {
    const t = init.token ?? (await defaultToken());
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${t}`);
    return fetch(`${base}${path}`, { ...init, headers });
  };
  return {
    ck,
    clock,
    base,
    token,
    graph,
    async createCall(body = callBody(), t) {
      const res = await graph('/v1.0/communications/calls', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        ...(t ? { token: t } : {}),
      });
      if (res.status !== 201) throw new Error(`create answered ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    },
    async advance(ms: number) {
      clock.advance(ms);
      await ck.scheduler.runNow();
      await ck.operationScheduler.runNow();
    },
    advanceWall(ms: number) {
      wallOffset += ms;
    },
    wallNow: wall,
    close: () => ck.close(),
  };
}

export interface GraphErrorBody {
  error: { code: string; message: string; innerError: { date: string; 'request-id': string; 'client-request-id': string } };
}
