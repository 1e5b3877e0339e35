import { parseArgs } from 'node:util';
import { parseDuration } from '../cli/duration.js';
import { type Clock, ScaledClock, type Timer } from '../clock/clock.js';
import { clientCredentials, DEFAULT_AUTHORITY } from './client-credentials.js';
import { KeepAlive } from './keep-alive.js';
import { formatSpan, formatStatus } from './status-line.js';

export const KEEP_HELP = `Usage: callkeeper keep <callId...> [options]

Keeps Microsoft Graph calls alive from the command line: sends keepAlive for each call every
interval (15 minutes by default), retries failures until the call's deadline, and shows a live
status line. Stops when every call has ended, or on Ctrl-C.

Options:
  --base-url <url>        Graph service root (default https://graph.microsoft.com/v1.0;
                          a local callkeeper: http://127.0.0.1:4545/v1.0)
  --tenant <id>           tenant (directory) id            (or env AZURE_TENANT_ID)
  --client-id <id>        the bot's app (client) id         (or env AZURE_CLIENT_ID)
  --client-secret <s>     the app's client secret           (or env AZURE_CLIENT_SECRET;
                          prefer the variable: arguments show up in process lists)
  --authority <url>       token authority (default ${DEFAULT_AUTHORITY};
                          a local callkeeper is its own: http://127.0.0.1:4545)
  --interval <dur>        time between keepAlives of a call (default 15m)
  --timeout <dur>         how long Graph keeps a call without one (default 45m)
  -h, --help              show this help
`;

/** What the command writes to and runs on; tests pass their own. */
export interface KeepCommandIo {
  stdout?: { write(text: string): unknown; isTTY?: boolean };
  env?: Record<string, string | undefined>;
  clock?: Clock;
  /** Stops the command like Ctrl-C does. */
  signal?: AbortSignal;
  /** Called with the running keeper (tests use it to wait for it between clock steps). */
  onStart?: (keeper: KeepAlive) => void;
}

/** How often the status line is refreshed: every second on a terminal, every minute in a log. */
const TTY_REFRESH_MS = 1_000;
const LOG_REFRESH_MS = 60_000;

/**
 * `callkeeper keep <callId...>`: runs a KeepAlive in the foreground until every call has ended
 * or the process is interrupted. Resolves when it has stopped.
 */
export async function keepCommand(argv: string[], io: KeepCommandIo = {}): Promise<void> {
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
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    out.write(KEEP_HELP);
    return;
  }
  const callIds = [...new Set(positionals)];
  if (callIds.length === 0) throw new Error('keep: name at least one call id (callkeeper keep --help)');
  const need = (value: string | undefined, flag: string, variable: string): string => {
    const v = value ?? env[variable];
    if (!v) throw new Error(`keep: ${flag} is required (or set ${variable})`);
    return v;
  };
  const tenantId = need(values.tenant, '--tenant', 'AZURE_TENANT_ID');
  const clientId = need(values['client-id'], '--client-id', 'AZURE_CLIENT_ID');
  const clientSecret = need(values['client-secret'], '--client-secret', 'AZURE_CLIENT_SECRET');
  const interval = parseDuration(values.interval, '--interval');
  const timeout = parseDuration(values.timeout, '--timeout');
  const baseUrl = values['base-url'];
  const clock = io.clock ?? new ScaledClock();

  const keeper = new KeepAlive({
    baseUrl,
    credential: clientCredentials({ authority: values.authority, tenantId, clientId, clientSecret, clock }),
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
  keeper.on('attemptFailed', (e) =>
    say(
      `call ${e.callId}: keepAlive failed (${e.status === undefined ? (e.error?.message ?? 'no answer') : `HTTP ${e.status}${e.code ? ` ${e.code}` : ''}`}), ` +
        `retry in ${formatSpan(e.retryAt - e.at)}`,
    ),
  );
  keeper.on('atRisk', (e) => say(`call ${e.callId}: at risk, no successful keepAlive for ${formatSpan(e.at - e.lastSuccessAt)}`));
  keeper.on('deadlineMissed', (e) => say(`call ${e.callId}: deadline missed; Graph has most likely ended it`));

  say(
    `callkeeper keep: ${callIds.length} call${callIds.length === 1 ? '' : 's'} at ${baseUrl}, one keepAlive every ${values.interval} (Ctrl-C to stop)`,
  );

  await new Promise<void>((resolve) => {
    let timer: Timer | undefined;
    let stopped = false;
    const stop = (why: string) => {
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
        resolve();
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
