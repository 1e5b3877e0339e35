import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseDuration } from '../cli/duration.js';
import { type Clock, ScaledClock, type Timer, wallTime } from '../clock/clock.js';
import { clientCredentials, DEFAULT_AUTHORITY } from './client-credentials.js';
import { KeepAlive } from './keep-alive.js';
import { connectRedis } from './shared/redis-url.js';
import type { RedisLike } from './shared/run-script.js';
import { formatSpan, formatStatus } from './status-line.js';

/** Exit codes of `callkeeper keep`, as --help lists them. */
export const KEEP_EXIT = {
  /** Every call ended, or stopped by Ctrl-C / SIGTERM. */
  ok: 0,
  /** Something unexpected went wrong. */
  failure: 1,
  /** Bad arguments (set by the CLI's entry point). */
  usage: 2,
  /** The token endpoint refused the app's credentials (invalid_client, unauthorized_client). */
  credentials: 3,
  /** --redis: Redis could not be reached at start. */
  redis: 4,
} as const;

export const KEEP_HELP = `Usage: callkeeper keep <callId...> [options]
       callkeeper keep --redis <url> [callId...] [options]

Keeps Microsoft Graph calls alive from the command line: sends keepAlive for each call every
interval (15 minutes by default), retries failures until the call's deadline, and shows a live
status line. Stops when every call has ended, or on Ctrl-C.

Call ids come as arguments, one a line from a file (--ids-from <file>), or from standard
input (--ids-from -); blank lines and lines starting with # are skipped.

With --redis it is one replica of a fleet: every replica given the same Redis and --namespace
shares the calls any of them tracked (ids are optional), exactly one sends each call's
keepAlives, and a replica that dies has its calls taken over once its leases lapse
(--lease-ttl). It runs until Ctrl-C or SIGTERM, which hand its calls to the others at once.

Options:
  --base-url <url>        Graph service root (default https://graph.microsoft.com/v1.0;
                          a local callkeeper: http://127.0.0.1:4545/v1.0)
  --tenant <id>           tenant (directory) id            (or env AZURE_TENANT_ID)
  --client-id <id>        the bot's app (client) id         (or env AZURE_CLIENT_ID)
  --client-secret <s>     the app's client secret           (or env AZURE_CLIENT_SECRET;
                          prefer the variable: arguments show up in process lists)
  --authority <url>       token authority (default ${DEFAULT_AUTHORITY};
                          a local callkeeper is its own: http://127.0.0.1:4545)
  --scope <scope>         token scope (default https://graph.microsoft.com/.default;
                          national clouds: https://graph.microsoft.us/.default, ...)
  --ids-from <file|->     read call ids from a file, or from stdin with - (with --redis, stdin is
                          read as it comes: each id is tracked as soon as its line arrives)
  --interval <dur>        time between keepAlives of a call (default 15m)
  --timeout <dur>         how long Graph keeps a call without one (default 45m)
                          durations need a unit: 15m, 90s, 1500ms, 2h (a bare number is an error)
  --redis <url>           shared keeping on Redis: redis://host:port/db, rediss://... (TLS),
                          or a cluster: redis-cluster://host:port,host:port
  --namespace <name>      with --redis: the fleet's name; replicas of one bot share one (default default)
  --lease-ttl <dur>       with --redis: a replica that stops renewing loses its calls after this (default 60s)
  --replica-id <id>       with --redis: this replica's name, unique in the fleet (default <host>-<pid>-<random>)
  --clock-from <url>      follow a callkeeper server's virtual time (its /_callkeeper/clock, read at start):
                          for a server run with --time-scale, e.g. http://127.0.0.1:4545
  -h, --help              show this help

Exit codes:
  0  every call has ended, or stopped by Ctrl-C / SIGTERM
  1  an unexpected error
  2  bad arguments
  3  the token endpoint refused the credentials (invalid_client, unauthorized_client):
     a wrong secret, client id or tenant; retrying will not help
  4  with --redis: Redis could not be reached at start
`;

/** A duration flag: a number with a unit. A bare number is refused, not taken as milliseconds. */
export function keepDuration(text: string, flag: string): number {
  if (/^\s*\d+(\.\d+)?\s*$/.test(text)) {
    throw new Error(`${flag}: '${text}' has no unit; write it with one: ${text.trim()}m, ${text.trim()}s or ${text.trim()}ms`);
  }
  return parseDuration(text, flag);
}

/** Call ids, one a line; blank lines and # comments skipped. */
export function parseIds(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** What the command writes to and runs on; tests pass their own. */
export interface KeepCommandIo {
  stdout?: { write(text: string): unknown; isTTY?: boolean };
  env?: Record<string, string | undefined>;
  clock?: Clock;
  /** Stops the command like Ctrl-C does. */
  signal?: AbortSignal;
  /** Called with the running keeper (tests use it to wait for it between clock steps). */
  onStart?: (keeper: KeepAlive) => void;
  /** Where `--ids-from -` reads. Default process.stdin. */
  stdin?: AsyncIterable<string | Buffer>;
}

/** How often the status line is refreshed: every second on a terminal, every minute in a log. */
const TTY_REFRESH_MS = 1_000;
const LOG_REFRESH_MS = 60_000;

/**
 * `callkeeper keep <callId...>`: runs a KeepAlive in the foreground until every call has ended
 * or the process is interrupted. Resolves with the exit code (KEEP_EXIT) when it has stopped;
 * rejects on bad arguments.
 */
export async function keepCommand(argv: string[], io: KeepCommandIo = {}): Promise<number> {
  const out = io.stdout ?? process.stdout;
  const env = io.env ?? process.env;
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      'base-url': { type: 'string', default: 'https://graph.microsoft.com/v1.0' },
      tenant: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      authority: { type: 'string', default: DEFAULT_AUTHORITY },
      interval: { type: 'string', default: '15m' },
      timeout: { type: 'string', default: '45m' },
      scope: { type: 'string' },
      'ids-from': { type: 'string' },
      redis: { type: 'string' },
      namespace: { type: 'string' },
      'lease-ttl': { type: 'string' },
      'replica-id': { type: 'string' },
      'clock-from': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    out.write(KEEP_HELP);
    return KEEP_EXIT.ok;
  }
  const from = values['ids-from'];
  // A fleet replica reads stdin as it comes (a bot pipes in each new call); otherwise to the end first.
  const streaming = from === '-' && values.redis !== undefined;
  const listed =
    from === undefined || streaming ? [] : parseIds(from === '-' ? await readAll(io.stdin ?? process.stdin) : await readIdsFile(from));
  const callIds = [...new Set([...positionals, ...listed])];
  const sharedUrl = values.redis;
  if (sharedUrl === undefined) {
    for (const flag of ['namespace', 'lease-ttl', 'replica-id'] as const) {
      if (values[flag] !== undefined) throw new Error(`keep: --${flag} is for shared keeping: add --redis <url>`);
    }
  }
  // A fleet replica may start with no ids: it keeps what the others tracked.
  if (callIds.length === 0 && sharedUrl === undefined) {
    throw new Error(
      `keep: name at least one call id${from === undefined ? '' : ` (${from === '-' ? 'stdin' : from} held none)`} (callkeeper keep --help)`,
    );
  }
  const need = (value: string | undefined, flag: string, variable: string): string => {
    const v = value ?? env[variable];
    if (!v) throw new Error(`keep: ${flag} is required (or set ${variable})`);
    return v;
  };
  const tenantId = need(values.tenant, '--tenant', 'AZURE_TENANT_ID');
  const clientId = need(values['client-id'], '--client-id', 'AZURE_CLIENT_ID');
  const clientSecret = need(values['client-secret'], '--client-secret', 'AZURE_CLIENT_SECRET');
  const interval = keepDuration(values.interval, '--interval');
  const timeout = keepDuration(values.timeout, '--timeout');
  const leaseTtl = values['lease-ttl'] === undefined ? undefined : keepDuration(values['lease-ttl'], '--lease-ttl');
  const baseUrl = values['base-url'];
  const clock = io.clock ?? (values['clock-from'] ? await clockFrom(values['clock-from']) : new ScaledClock());
  let redis: RedisLike | undefined;
  if (sharedUrl !== undefined) {
    try {
      redis = await connectRedis(sharedUrl);
    } catch (err) {
      // A URL that is not a Redis URL is a bad argument (thrown); one that does not answer is exit 4.
      if (!/cannot reach/.test((err as Error).message)) throw err;
      out.write(`callkeeper keep: ${(err as Error).message}\n`);
      return KEEP_EXIT.redis;
    }
  }

  let keeper: KeepAlive;
  try {
    keeper = new KeepAlive({
      baseUrl,
      credential: clientCredentials({ authority: values.authority, tenantId, clientId, clientSecret, clock }),
      ...(values.scope ? { scopes: [values.scope] } : {}),
      clock,
      interval,
      timeout,
      // The tick bounds wake-ups per real second (CPU). On a faster clock (--clock-from) a
      // virtual second is a few real ms: the tick grows towards one real second, as on the wall
      // clock, but stays within 1/60 of the interval, so sends keep near their slots.
      ...(clock.scale > 1 ? { tickMs: Math.max(1000, Math.min(1000 * clock.scale, interval / 60)) } : {}),
      ...(values['replica-id'] ? { replicaId: values['replica-id'] } : {}),
      ...(redis
        ? { shared: { redis, ...(values.namespace ? { namespace: values.namespace } : {}), ...(leaseTtl ? { leaseTtl } : {}) } }
        : {}),
    });
  } catch (err) {
    redis?.disconnect();
    throw err;
  }
  const tty = out.isTTY === true;
  let statusShown = false;
  /** Writes a whole line, first wiping the status line on a terminal. */
  const say = (line: string) => {
    if (tty && statusShown) out.write('\r\x1b[2K');
    statusShown = false;
    out.write(`${line}\n`);
  };
  const showStatus = () => {
    const line = formatStatus(keeper.stats(), clock.now());
    if (tty) {
      out.write(`\r\x1b[2K${line}`);
      statusShown = true;
    } else out.write(`${line}\n`);
  };

  keeper.on('ended', (e) => say(`call ${e.callId} ended (HTTP 404${e.code ? `, code ${e.code}` : ''}); ${keeper.size} left`));
  keeper.on('attemptFailed', (e) => {
    // A refused credential is said once, below, and ends the command.
    if (e.permanent === 'invalidClient' || e.permanent === 'unauthorizedClient') return;
    say(
      `call ${e.callId}: keepAlive failed (${e.status === undefined ? (e.error?.message ?? 'no answer') : `HTTP ${e.status}${e.code ? ` ${e.code}` : ''}`}), ` +
        `retry in ${formatSpan(e.retryAt - e.at)}`,
    );
  });
  keeper.on('atRisk', (e) => say(`call ${e.callId}: at risk, no successful keepAlive for ${formatSpan(e.at - e.lastSuccessAt)}`));
  keeper.on('deadlineMissed', (e) => say(`call ${e.callId}: deadline missed; Graph has most likely ended it`));
  keeper.on('rebalanced', (e) =>
    say(`replica ${keeper.replicaId}: holds ${e.held} calls (took ${e.gained}, handed over ${e.released}); ${e.replicas} replicas live`),
  );
  keeper.on('sharedError', (e) => say(`replica ${keeper.replicaId}: Redis ${e.operation} failed (${e.error.message}); retrying`));

  const what = `${callIds.length} call${callIds.length === 1 ? '' : 's'}`;
  say(
    redis
      ? `callkeeper keep: replica ${keeper.replicaId} of fleet ${values.namespace ?? 'default'} on Redis, ${callIds.length > 0 ? `tracking ${what}, ` : ''}at ${baseUrl}, one keepAlive every ${values.interval} (Ctrl-C to stop)`
      : `callkeeper keep: ${what} at ${baseUrl}, one keepAlive every ${values.interval} (Ctrl-C to stop)`,
  );

  return new Promise<number>((resolve) => {
    let timer: Timer | undefined;
    let stopped = false;
    const stop = (why: string, code: number = KEEP_EXIT.ok) => {
      if (stopped) return;
      stopped = true;
      timer?.cancel();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      io.signal?.removeEventListener('abort', onAbort);
      const final = formatStatus(keeper.stats(), clock.now());
      void keeper.close().then(async () => {
        if (redis) await Promise.resolve(redis.quit()).catch(() => redis.disconnect());
        say(final);
        say(`callkeeper keep: ${why}`);
        resolve(code);
      });
    };
    const onSignal = () => stop('interrupted, stopped');
    const onAbort = () => stop('stopped');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    io.signal?.addEventListener('abort', onAbort, { once: true });
    // A fleet replica does not stop when it holds no calls: others may track more, or leave.
    if (!redis) {
      keeper.on('ended', () => {
        if (keeper.size === 0) stop('every call has ended');
      });
    }
    keeper.on('permanentError', (e) => {
      if (e.kind !== 'invalidClient' && e.kind !== 'unauthorizedClient') {
        say(
          `permanent error (${e.kind}${e.status ? `, HTTP ${e.status}` : ''}${e.code ? ` ${e.code}` : ''}): calls retry every few minutes`,
        );
        return;
      }
      say(`the token endpoint refused the credentials: ${firstSentence(e.message ?? '')}`);
      stop('check --tenant, --client-id and --client-secret; not retrying', KEEP_EXIT.credentials);
    });
    const tick = () => {
      showStatus();
      timer = clock.setTimer(clock.now() + (tty ? TTY_REFRESH_MS : LOG_REFRESH_MS) * Math.max(1, clock.scale), tick);
    };
    // Nobody can tell us when these calls last had a keepAlive: assume a whole interval ago,
    // so each gets its first one now rather than somewhere in the next 15 minutes.
    const assumedLast = clock.now() - interval;
    for (const id of callIds) keeper.track(id, { lastKeepAliveAt: assumedLast });
    if (streaming) {
      void trackLines(io.stdin ?? process.stdin, (id) => {
        if (!stopped) keeper.track(id, { lastKeepAliveAt: clock.now() - interval });
      }).catch((err: unknown) => say(`callkeeper keep: reading stdin: ${String(err)}`));
    }
    io.onStart?.(keeper);
    tick();
    if (io.signal?.aborted) onAbort();
  });
}

/**
 * A clock that runs with a callkeeper server's virtual time: its scale, and its now (read once,
 * half the round trip added). The server and this process read the same wall clock, so they
 * stay together; a later POST /_callkeeper/clock/advance on the server is not followed.
 */
export async function clockFrom(base: string): Promise<ScaledClock> {
  const url = `${base.replace(/\/+$/, '')}/_callkeeper/clock`;
  const token = process.env.CALLKEEPER_CONTROL_TOKEN;
  // The quickest of a few round trips says the server's time best (at 600x, 10 ms is 6 s).
  let best: { rtt: number; answered: number; epochMs: number; scale: number } | undefined;
  for (let i = 0; i < 5; i++) {
    const asked = wallTime();
    let body: { epochMs?: unknown; scale?: unknown };
    try {
      const res = await fetch(url, { headers: token ? { 'x-callkeeper-control-token': token } : {}, signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = (await res.json()) as typeof body;
    } catch (err) {
      throw new Error(`keep: --clock-from ${url}: ${(err as Error).message}`);
    }
    const answered = wallTime();
    const { epochMs, scale } = body;
    if (typeof epochMs !== 'number' || typeof scale !== 'number' || !(scale > 0)) {
      throw new Error(`keep: --clock-from ${url} did not answer a running callkeeper clock ({ epochMs, scale > 0 })`);
    }
    if (!best || answered - asked < best.rtt) best = { rtt: answered - asked, answered, epochMs, scale };
  }
  const b = best as NonNullable<typeof best>;
  const wallOrigin = wallTime();
  return new ScaledClock(b.scale, Date.now, b.epochMs + (b.rtt / 2 + (wallOrigin - b.answered)) * b.scale);
}

/** "invalid_client: AADSTS7000215: Invalid client secret provided." out of the token error's message. */
function firstSentence(message: string): string {
  const m = /\((invalid_client|unauthorized_client): ([^.]*\.)/.exec(message);
  return m ? `${m[1]}: ${m[2]}` : (message.split('\n')[0] ?? message);
}

/** Calls `track` for each id line of `input` as it arrives (blank lines and # comments skipped). */
async function trackLines(input: AsyncIterable<string | Buffer>, track: (id: string) => void): Promise<void> {
  let rest = '';
  for await (const chunk of input) {
    rest += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const cut = rest.lastIndexOf('\n');
    if (cut < 0) continue;
    for (const id of parseIds(rest.slice(0, cut))) track(id);
    rest = rest.slice(cut + 1);
  }
  for (const id of parseIds(rest)) track(id);
}

async function readAll(input: AsyncIterable<string | Buffer>): Promise<string> {
  let text = '';
  for await (const chunk of input) text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
  return text;
}

async function readIdsFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`keep: --ids-from ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(err)}`);
  }
}
