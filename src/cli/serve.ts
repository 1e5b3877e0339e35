import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../auth/app-config.js';
import { CALLS_ROLES, DEFAULT_APP } from '../auth/apps.js';
import { wallTime } from '../clock/clock.js';
import { isLoopbackBinding } from '../http/control-guard.js';
import { DEFAULT_DISPATCHER } from '../notifications/dispatcher.js';
import { type Callkeeper, createCallkeeper, DEFAULTS } from '../server.js';
import { loadOrCreateTls, type TlsMaterial } from '../tls/certificates.js';
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
  --https-port <port>           port of the HTTPS listener (default 4546; 0 picks a free one)
  --no-https                    serve plain http only
  --cert <file> --key <file>    your own TLS certificate and key (PEM) instead of callkeeper's
  --tls-dir <dir>               where callkeeper keeps its local CA and certificate
                                (default <data>/tls; with --memory, $TMPDIR/callkeeper-tls)
  --config <file>               app registrations: {"apps":[{tenantId, clientId, clientSecret,
                                roles, displayName}]} (the default app is always there)
  --notify-timeout <dur>        limit of one notification request (default 10s, wall clock)
  --notify-retry-for <dur>      retry a failing notification this long, then dead-letter it
                                (default 1h, virtual time)
  --strict                      Graph's callbackUri rule exactly: https only (by default
                                http to a loopback host is accepted too)
  --control-token <secret>      required in the x-callkeeper-control-token header of every
                                /_callkeeper request (env CALLKEEPER_CONTROL_TOKEN); needed
                                to use the control API when --host is not a loopback address
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
      'https-port': { type: 'string', default: '4546' },
      'notify-timeout': { type: 'string', default: '10s' },
      'notify-retry-for': { type: 'string', default: '1h' },
      'no-https': { type: 'boolean', default: false },
      cert: { type: 'string' },
      key: { type: 'string' },
      'tls-dir': { type: 'string' },
      config: { type: 'string' },
      'body-limit': { type: 'string', default: String(DEFAULTS.bodyLimit) },
      'control-token': { type: 'string' },
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

  // Handlers first: a signal that arrives while starting (or right after the banner, which
  // wakes whoever reads it) must still shut down cleanly, not kill the process mid-write.
  let started: Callkeeper | undefined;
  let pendingSignal: string | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (!started) {
      pendingSignal = signal;
      return;
    }
    if (stopping) return;
    stopping = true;
    process.stdout.write(`callkeeper: ${signal} received, finishing in-flight requests\n`);
    // Never hang forever on a stuck connection.
    setTimeout(() => process.exit(1), 10_000).unref();
    started.close().then(
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
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: '${values.port}' is not a port number`);
  const timeScale = Number(values['time-scale']);
  if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new Error(`--time-scale: '${values['time-scale']}' must be a positive number`);
  const bodyLimit = Number(values['body-limit']);
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024) throw new Error('--body-limit must be a whole number of bytes, at least 1024');
  const dataDir = values.memory ? undefined : resolve(values.data ?? '.callkeeper');
  const httpsPort = Number(values['https-port']);
  if (!Number.isInteger(httpsPort) || httpsPort < 0 || httpsPort > 65535)
    throw new Error(`--https-port: '${values['https-port']}' is not a port number`);
  if ((values.cert === undefined) !== (values.key === undefined)) throw new Error('--cert and --key go together');
  let tls: (TlsMaterial & { own: boolean }) | undefined;
  if (!values['no-https']) {
    if (values.cert !== undefined && values.key !== undefined) {
      tls = { cert: readFileSync(values.cert, 'utf8'), key: readFileSync(values.key, 'utf8'), caCert: '', caPath: '', own: true };
    } else {
      const dir = resolve(values['tls-dir'] ?? (dataDir ? join(dataDir, 'tls') : join(tmpdir(), 'callkeeper-tls')));
      tls = { ...(await loadOrCreateTls(dir, wallTime())), own: false };
    }
  }
  const apps = [DEFAULT_APP, ...(values.config ? loadConfigFile(values.config).apps : [])];

  const ck = await createCallkeeper({
    dataDir,
    keepAliveTimeoutMs: parseDuration(values['keepalive-timeout'], '--keepalive-timeout'),
    establishDelayMs: parseDuration(values['establish-delay'], '--establish-delay'),
    timeScale,
    strictCallbackUri: values.strict,
    controlToken: values['control-token'] ?? (process.env.CALLKEEPER_CONTROL_TOKEN || undefined),
    bodyLimit,
    logger: { level: values['log-level'] },
    apps,
    tls: tls && { cert: tls.cert, key: tls.key },
    notifications: {
      ...DEFAULT_DISPATCHER,
      requestTimeoutMs: parseDuration(values['notify-timeout'], '--notify-timeout'),
      retry: { ...DEFAULT_DISPATCHER.retry, retryForMs: parseDuration(values['notify-retry-for'], '--notify-retry-for') },
    },
  });
  const address = await ck.listen(values.host, port);
  const tlsAddress = tls ? await ck.listenTls(values.host, httpsPort) : undefined;
  const app = ck.apps.list()[0];
  const lines = [
    'callkeeper: the Microsoft Graph calls API, on your machine',
    `  Graph API    ${address}/v1.0  (and ${address}/beta)`,
    ...(tlsAddress ? [`  Graph API    ${tlsAddress}/v1.0  (TLS)`] : []),
    `  Token        ${tlsAddress ?? address}/{tenant}/oauth2/v2.0/token  (authority: ${tlsAddress ?? address})`,
    `  Clouds       global at /, US Gov L4 at /usgov, US Gov L5 (DoD) at /dod, China at /china`,
    `  Control API  ${address}/_callkeeper`,
    `  Bot tokens   ${address}/botframework/v1/.well-known/openidconfiguration  (validates notifications)`,
    `  Data         ${ck.store.location === 'memory' ? 'in memory (nothing is written to disk)' : ck.store.location}`,
    `  keepAlive timeout ${values['keepalive-timeout']}, time scale ${timeScale}x`,
  ];
  if (!isLoopbackBinding(ck.app.server.address())) {
    lines.push(
      '',
      `WARNING: listening on ${values.host}, reachable from the network, not only from this machine.`,
      ck.config.controlToken
        ? '  The control API requires the x-callkeeper-control-token header.'
        : '  The control API refuses every request: start with --control-token (or CALLKEEPER_CONTROL_TOKEN) to use it.',
    );
  }
  if (tls && !tls.own) {
    lines.push(
      '',
      "Trust callkeeper's local CA (once):",
      `  Node.js   NODE_EXTRA_CA_CERTS=${tls.caPath}`,
      `  Python    REQUESTS_CA_BUNDLE=${tls.caPath}  (httpx/aiohttp: SSL_CERT_FILE=${tls.caPath})`,
      `  .NET      Linux: cp ${tls.caPath} /usr/local/share/ca-certificates/callkeeper.crt && update-ca-certificates;`,
      `            Windows: Import-Certificate -FilePath ${tls.caPath} -CertStoreLocation Cert:\\CurrentUser\\Root`,
    );
  }
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

  started = ck;
  if (pendingSignal) stop(pendingSignal);
}
