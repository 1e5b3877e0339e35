/**
 * A seeded fuzzer over what the hardening pass found fragile: the control API (clock advance
 * values, content types, Host and Origin), Graph bodies (mutated, deep, polluted), call ids,
 * the token endpoint (wrong secrets, odd forms), every cloud prefix, and raw malformed HTTP.
 * Used by test/fuzz.test.ts (a few seconds) and by the bench's fuzz row (a longer run).
 * Loopback only: it talks to `base` and nothing else.
 */
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { DEFAULT_APP } from '../src/auth/apps.js';

export interface FuzzOptions {
  seed: number;
  requests: number;
  /** A valid Graph token of the default app. */
  token: string;
  /** In flight at once. */
  concurrency?: number;
}

export interface FuzzFinding {
  kind: string;
  method: string;
  path: string;
  status: number;
  body: string;
}

export interface FuzzResult {
  requests: number;
  byStatus: Record<string, number>;
  /** 501 NotImplemented answers (documented Graph routes not emulated yet): by design, not failures. */
  notImplemented: number;
  /** Every other 5xx answer, with what caused it. */
  serverErrors: FuzzFinding[];
  /** Requests the server did not answer at all (connection reset or closed): fine for raw garbage. */
  unanswered: number;
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Req {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  raw?: string;
}

export async function fuzz(base: string, opts: FuzzOptions): Promise<FuzzResult> {
  const rnd = prng(opts.seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const url = new URL(base);
  const hostHeader = url.host;
  const ids: string[] = [];

  const strings = () =>
    pick([
      '',
      ' ',
      'x'.repeat(int(5000)),
      '\u0000\u0001',
      '😀'.repeat(int(50)),
      '%zz',
      '../../etc/passwd',
      '"quoted"',
      'null',
      String(rnd()),
      `${int(100000)}${pick(['ms', 's', 'm', 'h', 'd', 'y', 'w', 'years', 'x', ''])}`,
      '1e400',
      '-5m',
      'Infinity',
      'NaN',
      '<script>',
    ]);
  const deep = (): string => {
    const d = pick([10, 63, 65, 200, 5000, 50_000]);
    const [o, c] = pick([
      ['[', ']'],
      ['{"a":', '}'],
    ] as const);
    return `${o.repeat(d)}1${c.repeat(d)}`;
  };
  const value = (depth = 0): unknown => {
    switch (int(depth > 2 ? 7 : 10)) {
      case 0:
        return strings();
      case 1:
        return pick([0, -1, 1.5, 2 ** 53, 1e16, 9e15, -9e15, 3650 * 86_400_000, 1e300, Number.MAX_SAFE_INTEGER]);
      case 2:
        return pick([null, true, false]);
      case 3:
        return int(1_000_000_000);
      case 4:
        return [];
      case 5:
        return {};
      case 6:
        return strings();
      case 7:
        return Array.from({ length: int(5) }, () => value(depth + 1));
      default:
        return Object.fromEntries(
          Array.from({ length: int(5) }, () => [pick(['a', 'ms', '@odata.type', 'id', strings()]), value(depth + 1)]),
        );
    }
  };
  const jsonBody = (obj: Record<string, unknown>): string => {
    switch (int(10)) {
      case 0:
        return deep();
      case 1:
        return '{"__proto__":{"polluted":1}}';
      case 2:
        return '{"constructor":{"prototype":{"polluted":1}}}';
      case 3:
        return JSON.stringify(obj).slice(0, int(JSON.stringify(obj).length));
      case 4:
        return strings();
      default: {
        const copy: Record<string, unknown> = { ...obj };
        const keys = Object.keys(copy);
        for (let i = int(3); i >= 0; i--) copy[pick([...keys, strings()])] = value();
        return JSON.stringify(copy);
      }
    }
  };
  const contentType = () =>
    pick([
      'application/json',
      'application/json',
      'application/json; charset=utf-8',
      'application/x-www-form-urlencoded',
      'text/plain',
      'multipart/form-data; boundary=x',
      '',
      'application/json; charset=utf-16',
    ]);
  const callBody = {
    '@odata.type': '#microsoft.graph.call',
    callbackUri: 'https://127.0.0.1:4/api/calls',
    requestedModalities: ['audio'],
    mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
    targets: [{ '@odata.type': '#microsoft.graph.invitationParticipantInfo', identity: { user: { id: 'u1' } } }],
  };
  const someId = () => (ids.length && rnd() < 0.6 ? pick(ids) : pick(['x', '%2e%2e', 'a'.repeat(5000), '%zz', '😀', crypto.randomUUID()]));
  const prefix = () => pick(['', '', '', '/usgov', '/dod', '/china']);
  const auth = (): Record<string, string> =>
    rnd() < 0.85 ? { authorization: `Bearer ${opts.token}` } : rnd() < 0.5 ? {} : { authorization: `Bearer ${strings()}` };

  const next = (): Req => {
    const headers: Record<string, string> = {};
    const ct = contentType();
    if (ct) headers['content-type'] = ct;
    switch (int(11)) {
      case 0:
      case 1: {
        if (rnd() < 0.2) headers.host = pick(['evil.test', `rebind.test:${url.port}`, 'localhost', '[::1]']);
        if (rnd() < 0.2) headers.origin = pick(['https://evil.test', 'null', base]);
        const body = rnd() < 0.8 ? JSON.stringify({ ms: value() }) : jsonBody({ ms: 1 });
        return { kind: 'clock advance', method: 'POST', path: '/_callkeeper/clock/advance', headers, body };
      }
      case 2:
      case 3:
        return {
          kind: 'create call',
          method: 'POST',
          path: `${prefix()}/v1.0/communications/calls`,
          headers: { ...headers, ...auth() },
          body: jsonBody(callBody),
        };
      case 4:
        return {
          kind: 'call action',
          method: pick(['POST', 'GET', 'DELETE', 'PATCH']),
          path: `${prefix()}/${pick(['v1.0', 'beta'])}/communications/calls/${someId()}${pick(['', '/keepAlive', '/answer', '/reject', '/participants', '/operations/x', '/playPrompt'])}`,
          headers: { ...headers, ...auth() },
          ...(rnd() < 0.5 ? { body: jsonBody({}) } : {}),
        };
      case 5: {
        const form = new URLSearchParams();
        for (const k of ['client_id', 'client_secret', 'scope', 'grant_type']) {
          if (rnd() < 0.85)
            form.set(
              k,
              rnd() < 0.5
                ? ({
                    client_id: DEFAULT_APP.clientId,
                    client_secret: strings(),
                    scope: 'https://graph.microsoft.com/.default',
                    grant_type: 'client_credentials',
                  }[k] as string)
                : strings(),
            );
        }
        return {
          kind: 'token',
          method: 'POST',
          path: `${prefix()}/${rnd() < 0.7 ? DEFAULT_APP.tenantId : encodeURIComponent(strings())}/oauth2/v2.0/token`,
          headers: { 'content-type': rnd() < 0.8 ? 'application/x-www-form-urlencoded' : contentType() || 'text/plain' },
          body: rnd() < 0.9 ? form.toString() : deep(),
        };
      }
      case 6:
        return {
          kind: 'control read',
          method: 'GET',
          path: pick([
            `/_callkeeper/calls?$top=${encodeURIComponent(strings())}`,
            `/_callkeeper/calls?state=${encodeURIComponent(strings())}&$skiptoken=${encodeURIComponent(strings())}`,
            `/_callkeeper/calls/${someId()}`,
            `/_callkeeper/notifications?callId=${someId()}&status=${encodeURIComponent(strings())}`,
            '/_callkeeper/clock',
            '/_callkeeper/health',
            `/_callkeeper/${encodeURIComponent(strings())}`,
          ]),
          headers: {},
        };
      case 7:
        return {
          kind: 'control write',
          method: 'POST',
          path: pick([
            '/_callkeeper/apps',
            '/_callkeeper/incoming-calls',
            `/_callkeeper/calls/${someId()}/expire`,
            `/_callkeeper/calls/${someId()}/hangup`,
          ]),
          headers,
          body: jsonBody({ appId: DEFAULT_APP.clientId, callbackUri: 'https://127.0.0.1:4/cb', displayName: 'x' }),
        };
      case 8:
        return {
          kind: 'raw',
          method: 'RAW',
          path: '',
          headers: {},
          raw: pick([
            'BAD\r\n\r\n',
            `GET /${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
            `GET / HTTP/1.1\r\nHost: x\r\nX: ${'b'.repeat(20_000)}\r\n\r\n`,
            'GET / HTTP/9.9\r\n\r\n',
            'POST /_callkeeper/clock/advance HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n',
            'POST /v1.0/communications/calls HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
            'GET /%ff%fe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
            '\u0000\u0001\u0002\r\n\r\n',
            `GET /_callkeeper/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n${'GARBAGE '.repeat(int(100))}\r\n\r\n`,
          ]),
        };
      default:
        return {
          kind: 'any path',
          method: pick(['GET', 'POST', 'PUT', 'OPTIONS', 'HEAD']),
          path: `/${pick(['v1.0', 'beta', '_callkeeper', 'botframework', 'x', '%2F'])}/${encodeURIComponent(strings()).slice(0, 3000)}`,
          headers: { ...headers, ...auth() },
          ...(rnd() < 0.3 ? { body: jsonBody({}) } : {}),
        };
    }
  };

  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency ?? 8 });
  const result: FuzzResult = { requests: 0, byStatus: {}, serverErrors: [], notImplemented: 0, unanswered: 0 };
  const record = (r: Req, status: number, body: string) => {
    result.requests++;
    if (status === 0) result.unanswered++;
    result.byStatus[String(status)] = (result.byStatus[String(status)] ?? 0) + 1;
    // 501 NotImplemented is the deliberate answer for Graph routes callkeeper does not emulate yet.
    if (status === 501 && body.includes('"NotImplemented"')) result.notImplemented++;
    else if (status >= 500)
      result.serverErrors.push({ kind: r.kind, method: r.method, path: r.path.slice(0, 200), status, body: body.slice(0, 300) });
    if (r.kind === 'create call' && status === 201) {
      const id = /"id":"([^"]+)"/.exec(body)?.[1];
      if (id) ids.push(id);
    }
  };
  const send = (r: Req): Promise<void> =>
    new Promise((resolve) => {
      if (r.raw !== undefined) {
        const sock = connect(Number(url.port), url.hostname);
        let got = '';
        sock.setEncoding('latin1');
        sock.setTimeout(30_000, () => sock.destroy());
        sock.on('data', (c: string) => {
          got += c;
        });
        sock.on('error', () => {});
        sock.on('close', () => {
          const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? 0);
          record(r, status, got);
          resolve();
        });
        sock.end(r.raw, 'latin1');
        return;
      }
      const headers: Record<string, string> = { host: hostHeader, ...r.headers };
      // Node sends no header value with control or non-Latin characters; raw requests cover those.
      for (const [k, v] of Object.entries(headers)) headers[k] = v.replace(/[^\t\x20-\x7e]/gu, '?');
      if (r.body !== undefined) headers['content-length'] = String(Buffer.byteLength(r.body));
      // Node refuses to send a path with raw spaces or non-ASCII: those go percent-encoded.
      const path = (r.path || '/').replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
      const req = request({ host: url.hostname, port: url.port, method: r.method, path, headers, agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text.length < 2000) text += c;
        });
        res.on('end', () => {
          record(r, res.statusCode ?? 0, text);
          resolve();
        });
        res.on('error', () => {
          record(r, 0, '');
          resolve();
        });
      });
      req.setTimeout(30_000, () => req.destroy());
      req.on('error', () => {
        record(r, 0, '');
        resolve();
      });
      req.end(r.body);
    });

  // Requests are generated in one seeded order; `concurrency` of them run at once.
  const queue: Req[] = Array.from({ length: opts.requests }, next);
  const workers = Array.from({ length: opts.concurrency ?? 8 }, async () => {
    for (let r = queue.shift(); r; r = queue.shift()) await send(r);
  });
  await Promise.all(workers);
  agent.destroy();
  return result;
}
