import { Agent, type Dispatcher, request } from 'undici';
import { DEFAULT_APP } from '../src/auth/apps.js';

/** A call body Graph accepts (https://learn.microsoft.com/graph/api/application-post-calls); its notifications go to `callbackUri` (the bench's loopback sink). */
export function createBody(callbackUri: string): string {
  return JSON.stringify({
    callbackUri,
    requestedModalities: ['audio'],
    mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
    targets: [{ identity: { user: { id: 'u1' } } }],
  });
}

/** Accepts the benchmark's self-signed certificate; plain http ignores it. */
export const insecureAgent: Dispatcher = new Agent({ connect: { rejectUnauthorized: false } });

/** A client-credentials token for the well-known dev app. */
export async function fetchToken(base: string): Promise<string> {
  const form = new URLSearchParams({
    client_id: DEFAULT_APP.clientId,
    client_secret: DEFAULT_APP.clientSecret,
    scope: 'https://graph.microsoft.com/.default',
    grant_type: 'client_credentials',
  });
  const res = await request(`${base}/${DEFAULT_APP.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    dispatcher: insecureAgent,
  });
  const body = (await res.body.json()) as { access_token?: unknown };
  if (res.statusCode !== 200 || typeof body.access_token !== 'string') throw new Error(`token endpoint answered ${res.statusCode}`);
  return body.access_token;
}

/** Creates `count` calls through the Graph API (their notifications go to `callbackUri`), `parallel` at a time; returns their ids. */
export async function createCalls(base: string, token: string, count: number, callbackUri: string, parallel = 16): Promise<string[]> {
  const payload = createBody(callbackUri);
  const ids: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const res = await request(`${base}/v1.0/communications/calls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: payload,
        dispatcher: insecureAgent,
      });
      const body = (await res.body.json()) as { id?: unknown };
      if (res.statusCode !== 201 || typeof body.id !== 'string') throw new Error(`create answered ${res.statusCode}`);
      ids.push(body.id);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return ids;
}

/** One keepAlive; resolves with the status code. */
export async function keepAliveOnce(base: string, token: string, id: string): Promise<number> {
  const res = await request(`${base}/v1.0/communications/calls/${id}/keepAlive`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    dispatcher: insecureAgent,
  });
  await res.body.dump();
  return res.statusCode;
}

/** GET /_callkeeper/health's call counts. */
export async function health(base: string): Promise<{ active: number; ended: number }> {
  const res = await request(`${base}/_callkeeper/health`, { dispatcher: insecureAgent });
  const body = (await res.body.json()) as { calls?: { active: number; ended: number } };
  if (res.statusCode !== 200 || !body.calls) throw new Error(`health answered ${res.statusCode}`);
  return body.calls;
}
