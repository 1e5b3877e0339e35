import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseDuration } from '../cli/duration.js';
import { type Clock, ScaledClock, type Timer } from '../clock/clock.js';
import { clientCredentials, DEFAULT_AUTHORITY } from './client-credentials.js';
import { KeepAlive } from './keep-alive.js';
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
} as const;

export const KEEP_HELP = `Usage: callkeeper keep <callId...> [options]

Keeps Microsoft Graph calls alive from the command line: sends keepAlive for each call every
interval (15 minutes by default), retries failures until the call's deadline, and shows a live
status line. Stops when every call has ended, or on Ctrl-C.

Call ids come as arguments, one a line from a file (--ids-from <file>), or from standard
input (--ids-from -); blank lines and lines starting with # are skipped.

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
  --ids-from <file|->     read call ids from a file, or from stdin with -
  --interval <dur>        time between keepAlives of a call (default 15m)
  --timeout <dur>         how long Graph keeps a call without one (default 45m)
                          durations need a unit: 15m, 90s, 1500ms, 2h (a bare number is an error)
  -h, --help              show this help

Exit codes:
  0  every call has ended, or stopped by Ctrl-C / SIGTERM
  1  an unexpected error
  2  bad arguments
  3  the token endpoint refused the credentials (invalid_client, unauthorized_client):
     a wrong secret, client id or tenant; retrying will not help
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
  const listed = from === undefined ? [] : parseIds(from === '-' ? await readAll(io.stdin ?? process.stdin) : await readIdsFile(from));
  const callIds = [...new Set([...positionals, ...listed])];
  if (callIds.length === 0) {
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
  const baseUrl = values['base-url'];
  const clock = io.clock ?? new ScaledClock();

  const keeper = new KeepAlive({
    baseUrl,
    credential: clientCredentials({ authority: values.authority, tenantId, clientId, clientSecret, clock }),
    ...(values.scope ? { scopes: [values.scope] } : {}),
    clock,
    interval,
    timeout,
  });
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

  say(
    `callkeeper keep: ${callIds.length} call${callIds.length === 1 ? '' : 's'} at ${baseUrl}, one keepAlive every ${values.interval} (Ctrl-C to stop)`,
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
      void keeper.close().then(() => {
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
    keeper.on('ended', () => {
      if (keeper.size === 0) stop('every call has ended');
    });
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
    io.onStart?.(keeper);
    tick();
    if (io.signal?.aborted) onAbort();
  });
}

/** "invalid_client: AADSTS7000215: Invalid client secret provided." out of the token error's message. */
function firstSentence(message: string): string {
  const m = /\((invalid_client|unauthorized_client): ([^.]*\.)/.exec(message);
  return m ? `${m[1]}: ${m[2]}` : (message.split('\n')[0] ?? message);
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
