// A loopback bot with no dependencies (plain Node 20): gets a token, places a call whose
// callback is this process, validates each notification's JWT against callkeeper's published
// keys (403 otherwise), keeps the call alive, and exits when the call has ended.
//   CALLKEEPER_URL=https://127.0.0.1:4546 NODE_EXTRA_CA_CERTS=.callkeeper/tls/ca.crt node bot.mjs
import { createPublicKey, createVerify } from 'node:crypto';
import { createServer } from 'node:http';

const base = process.env.CALLKEEPER_URL ?? 'https://127.0.0.1:4546';
const port = Number(process.env.BOT_PORT ?? 3978);
const tenantId = 'ca11ca11-0000-4000-8000-000000000001';
const clientId = 'ca11ca11-0000-4000-8000-00000000b075';
const keepAliveEveryMs = Number(process.env.KEEPALIVE_EVERY_MS ?? 15 * 60_000);

async function token() {
  const res = await fetch(`${base}/${tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    body: new URLSearchParams({
      client_id: clientId,
      client_secret: 'callkeeper-dev-secret',
      scope: 'https://graph.microsoft.com/.default',
      grant_type: 'client_credentials',
    }),
  });
  if (!res.ok) throw new Error(`token: ${res.status} ${await res.text()}`);
  return (await res.json()).access_token;
}

// The notification token: RS256, issuer https://api.botframework.com, audience our client id.
const config = await (await fetch(`${base}/botframework/v1/.well-known/openidconfiguration`)).json();
const { keys } = await (await fetch(config.jwks_uri)).json();
function validNotificationToken(header) {
  const jwt = /^Bearer (.+)$/.exec(header ?? '')?.[1];
  const [h, p, s] = jwt?.split('.') ?? [];
  if (!h || !p || !s) return false;
  const head = JSON.parse(Buffer.from(h, 'base64url').toString());
  const jwk = keys.find((k) => k.kid === head.kid);
  if (head.alg !== 'RS256' || !jwk) return false;
  const ok = createVerify('RSA-SHA256').update(`${h}.${p}`).verify(createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  const now = Date.now() / 1000;
  return ok && claims.iss === 'https://api.botframework.com' && claims.aud === clientId && claims.exp > now && (claims.nbf ?? 0) <= now + 300;
}

let callId;
let timer;
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    if (!validNotificationToken(req.headers.authorization)) {
      res.writeHead(403).end();
      return;
    }
    res.writeHead(202).end();
    for (const n of JSON.parse(body).value ?? []) {
      console.log(`notification: ${n.changeType} ${n.resourceData?.state ?? ''}`);
      if (n.resourceData?.state === 'terminated' && n.resourceUrl?.endsWith(callId)) {
        clearInterval(timer);
        server.close();
        console.log('call ended');
      }
    }
  });
});
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));

const headers = { authorization: `Bearer ${await token()}`, 'content-type': 'application/json' };
const created = await fetch(`${base}/v1.0/communications/calls`, {
  method: 'POST',
  headers,
  body: JSON.stringify({
    '@odata.type': '#microsoft.graph.call',
    callbackUri: `http://127.0.0.1:${server.address().port}/api/calls`,
    requestedModalities: ['audio'],
    mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
    targets: [{ identity: { user: { id: '8d4d8ca3-0000-4000-8000-000000000001' } } }],
  }),
});
if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`);
callId = (await created.json()).id;
console.log(`call ${callId} created`);
const keepAlive = async () => {
  headers.authorization = `Bearer ${await token()}`; // tokens live an hour: take a fresh one
  const res = await fetch(`${base}/v1.0/communications/calls/${callId}/keepAlive`, { method: 'POST', headers });
  console.log(`keepAlive: ${res.status}`);
};
await keepAlive();
timer = setInterval(keepAlive, keepAliveEveryMs);
