import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CALLS_ROLES } from '../auth/apps.js';
import { createCallkeeper, DEFAULTS } from '../server.js';
import { parseDuration } from './duration.js';

export const SERVE_HELP = `Usage: callkeeper serve [options]

Runs the Microsoft Graph calls API (v1.0 and beta) with keepAlive, a token endpoint and
the /_callkeeper control API.

Options:
  --host <host>                 address to listen on (default 127.0.0.1)
  --port <port>                 port to listen on; 0 picks a free one (default 4545)
  --data <dir>                  directory for the SQLite store (default ./.callkeeper)
  --memory                      keep everything in memory; nothing is written to disk
  --keepalive-timeout <dur>     a call ends this long after its start or last keepAlive
                                (default 45m; examples: 45m, 90s, 1500ms)
  --time-scale <n>              virtual time runs n times faster than the wall clock (default 1)
  --establish-delay <dur>       how long an outgoing call stays 'establishing' (default 1s)
  --strict                      Graph's callbackUri rule exactly: https only (by default
                                http to a loopback host is accepted too)
  --body-limit <bytes>          largest accepted request body (default 1048576)
  --log-level <level>           fatal, error, warn, info, debug or trace (default warn)
  -h, --help                    show this help
`;

export async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '4545' },
      data: { type: 'string' },
      memory: { type: 'boolean', default: false },
      'keepalive-timeout': { type: 'string', default: '45m' },
      'time-scale': { type: 'string', default: '1' },
      'establish-delay': { type: 'string', default: '1s' },
      strict: { type: 'boolean', default: false },
      'body-limit': { type: 'string', default: String(DEFAULTS.bodyLimit) },
      'log-level': { type: 'string', default: 'warn' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return;
  }
  if (values.memory && values.data !== undefined) throw new Error('--memory and --data exclude each other');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: '${values.port}' is not a port number`);
  const timeScale = Number(values['time-scale']);
  if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new Error(`--time-scale: '${values['time-scale']}' must be a positive number`);
  const bodyLimit = Number(values['body-limit']);
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024) throw new Error('--body-limit must be a whole number of bytes, at least 1024');
  const dataDir = values.memory ? undefined : resolve(values.data ?? '.callkeeper');

  const ck = await createCallkeeper({
    dataDir,
    keepAliveTimeoutMs: parseDuration(values['keepalive-timeout'], '--keepalive-timeout'),
    establishDelayMs: parseDuration(values['establish-delay'], '--establish-delay'),
    timeScale,
    strictCallbackUri: values.strict,
    bodyLimit,
    logger: { level: values['log-level'] },
  });
  const address = await ck.listen(values.host, port);
  const app = ck.apps.list()[0];
  const lines = [
    'callkeeper: the Microsoft Graph calls API, on your machine',
    `  Graph API    ${address}/v1.0  (and ${address}/beta)`,
    `  Token        ${address}/{tenant}/oauth2/v2.0/token`,
    `  Control API  ${address}/_callkeeper`,
    `  Data         ${ck.store.location === 'memory' ? 'in memory (nothing is written to disk)' : ck.store.location}`,
    `  keepAlive timeout ${values['keepalive-timeout']}, time scale ${timeScale}x`,
  ];
  if (app) {
    lines.push(
      '',
      'Default app registration (well-known development credentials, not secrets):',
      `  tenant id      ${app.tenantId}`,
      `  client id      ${app.clientId}`,
      `  client secret  ${app.clientSecret}`,
      `  roles          ${CALLS_ROLES.join(', ')}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`callkeeper: ${signal} received, finishing in-flight requests\n`);
    // Never hang forever on a stuck connection.
    setTimeout(() => process.exit(1), 10_000).unref();
    ck.close().then(
      () => {
        process.stdout.write('callkeeper: stopped\n');
        process.exitCode = 0;
      },
      (err: unknown) => {
        process.stderr.write(`callkeeper: error while stopping: ${String(err)}\n`);
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
