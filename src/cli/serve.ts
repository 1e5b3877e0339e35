import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { CALLS_ROLES, DEFAULT_APP } from '../auth/apps.js';
import { DEFAULT_BOT_ACTIONS } from '../calls/bot-actions.js';
import { wallTime } from '../clock/clock.js';
import { isLoopbackBinding } from '../http/control-guard.js';
import { DEFAULT_DISPATCHER } from '../notifications/dispatcher.js';
import type { Callkeeper, CallkeeperConfig } from '../server.js';
import { StoreConfigError, StoreUnavailableError } from '../store/store-errors.js';
import type { TlsMaterial } from '../tls/certificates.js';
import { defaultMemoryKeyDir, defaultMemoryTlsDir } from '../tls/tls-dir.js';
import { configApps } from './config-file.js';
import { listenOrExplain } from './listen.js';
import { renderHelpOptions } from './option-docs.js';
import { CliError, type OptionSource, optionLabel, resolveOptions } from './options.js';
import { removeReadyFile, writeReadyFile } from './ready-file.js';
import { SERVE_OPTIONS, type ServeOptions } from './serve-options.js';
import { StartupGate } from './startup-gate.js';

export const SERVE_HELP = `Usage: callkeeper serve [options]

Runs the Microsoft Graph calls API (v1.0 and beta) with keepAlive, a token endpoint and
the /_callkeeper control API.

Every option can also be set by its CALLKEEPER_* environment variable or by its key in the
--config file (JSON; schema: callkeeper.schema.json). Flags win over the environment, the
environment over the file, the file over the defaults. Durations: 45m, 90s, 1500ms, 2h, 1d.

Options:
${renderHelpOptions(SERVE_OPTIONS)}  -h, --help                      show this help
`;

const SOURCE_RANK: Record<OptionSource, number> = { flag: 3, env: 2, file: 1, default: 0 };

/** --memory and --data: the one set by the stronger source wins; set by the same one, they clash. */
function dataDirOf(o: ServeOptions, sources: Record<keyof ServeOptions, OptionSource>, configPath?: string): string | undefined {
  const memory = o.memory;
  const data = o.data;
  if (memory && data !== undefined) {
    const m = SOURCE_RANK[sources.memory];
    const d = SOURCE_RANK[sources.data];
    if (m === d)
      throw new CliError(
        `${optionLabel('memory', sources.memory, configPath)} and ${optionLabel('data', sources.data, configPath)} exclude each other: keep one`,
      );
    return m > d ? undefined : resolve(data);
  }
  return memory ? undefined : resolve(data ?? '.callkeeper');
}

function readPem(key: 'cert' | 'key', path: string, source: OptionSource, configPath?: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(
      `${optionLabel(key, source, configPath)}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

/** A data directory that cannot be used (permissions, a file in the way, read-only) names --data. */
async function explainDataDirErrors<T>(start: () => Promise<T>, dataDir: string | undefined, dataLabel: string): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (dataDir && /^(EACCES|EPERM|EROFS|ENOTDIR|EEXIST|ENOENT|SQLITE_CANTOPEN|SQLITE_READONLY)$/.test(code))
      throw new CliError(`${dataLabel}: cannot use ${dataDir}: ${(err as Error).message}`);
    throw err;
  }
}

/** A Redis store that cannot be reached, or is set up otherwise, names --store. */
async function explainStoreErrors<T>(start: () => Promise<T>, storeLabel: string | undefined): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (storeLabel && (err instanceof StoreUnavailableError || err instanceof StoreConfigError))
      throw new CliError(`${storeLabel}: ${err.message}`);
    throw err;
  }
}

export async function serve(argv: string[], env: Record<string, string | undefined> = process.env): Promise<void> {
  const resolved = resolveOptions(SERVE_OPTIONS, argv, env, {
    command: 'callkeeper serve',
    configKey: 'config',
    extraFileKeys: ['apps'],
  });
  if (resolved.help) {
    process.stdout.write(SERVE_HELP);
    return;
  }
  const o = resolved.values;
  const src = resolved.sources;
  const configPath = resolved.file?.path;
  const label = (key: keyof ServeOptions) => optionLabel(key, src[key], configPath);
  const json = o.logFormat === 'json';
  // In json mode stdout carries JSON lines only: the banner and notices go to stderr.
  const human = json ? process.stderr : process.stdout;
  const instanceName = `${hostname()}:${process.pid}`;
  // The lifecycle lines are written here (they must appear at any --log-level), with pino's base fields.
  const event = (name: string, fields: Record<string, unknown> = {}) =>
    process.stdout.write(
      `${JSON.stringify({ level: 30, time: wallTime(), pid: process.pid, hostname: hostname(), instance: instanceName, event: name, msg: name, ...fields })}\n`,
    );

  const dataDir = dataDirOf(o, src, configPath);
  // `--port 0` alone means "any free ports": the https port follows unless it was set.
  const httpsPort = o.port === 0 && src.httpsPort === 'default' ? 0 : o.httpsPort;
  if ((o.cert === undefined) !== (o.key === undefined))
    throw new CliError(`${o.cert === undefined ? label('key') : label('cert')}: --cert and --key go together (give both, or neither)`);
  const apps = [DEFAULT_APP, ...configApps(resolved.file)];

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
    if (json) event('stopping', { signal });
    else human.write(`callkeeper: ${signal} received, finishing in-flight requests\n`);
    // Never hang forever on a stuck connection.
    setTimeout(() => process.exit(1), 10_000).unref();
    if (o.readyFile) removeReadyFile(o.readyFile);
    started.close().then(
      () => {
        if (json) event('stopped');
        else human.write('callkeeper: stopped\n');
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

  // Own certificate (--cert/--key), or callkeeper's local CA (`local`), or none (--no-https).
  let tls: { cert: string; key: string; local?: TlsMaterial } | undefined;
  if (o.https) {
    if (o.cert !== undefined && o.key !== undefined) {
      tls = { cert: readPem('cert', o.cert, src.cert, configPath), key: readPem('key', o.key, src.key, configPath) };
    } else {
      const dir = o.tlsDir !== undefined ? resolve(o.tlsDir) : dataDir ? resolve(dataDir, 'tls') : defaultMemoryTlsDir();
      try {
        const { loadOrCreateTls } = await import('../tls/certificates.js');
        const local = await loadOrCreateTls(dir, wallTime(), { sans: o.tlsSan, ...(o.caKeyDir ? { caKeyDir: resolve(o.caKeyDir) } : {}) });
        tls = { cert: local.cert, key: local.key, local };
      } catch (err) {
        const which = o.caKeyDir ? 'caKeyDir' : o.tlsDir === undefined && dataDir ? 'data' : 'tlsDir';
        throw new CliError(`${label(which)}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  // Log lines wait until the ready event (json) or the banner is out, so it comes first.
  const gate = new StartupGate(process.stdout);
  const config: Partial<CallkeeperConfig> = {
    dataDir,
    // --memory: the signing keys outlive a restart (a running bot's token and its copy of the
    // notification keys stay valid), in the per-user state directory as the local CA's key.
    // --signing-key-dir: any store without keys yet takes that directory's (docs/decisions.md).
    ...(o.signingKeyDir !== undefined
      ? { signingKeyDir: resolve(o.signingKeyDir) }
      : dataDir === undefined && o.store === undefined
        ? { signingKeyDir: defaultMemoryKeyDir() }
        : {}),
    storeUrl: o.store,
    storeShards: o.storeShards,
    keepAliveTimeoutMs: o.keepaliveTimeout,
    establishDelayMs: o.establishDelay,
    botActions: {
      ...DEFAULT_BOT_ACTIONS,
      promptMs: o.promptDuration,
      inviteAcceptMs: o.inviteDelay,
      transferStepMs: o.transferStep,
    },
    timeScale: o.timeScale,
    tokenLifetimeS: Math.round(o.tokenLifetime / 1000),
    strictCallbackUri: o.strict,
    controlToken: o.controlToken,
    bodyLimit: o.bodyLimit,
    // Every line names the instance (several may write to one log; docs/decisions.md, "Instance names").
    instanceName,
    logger: { level: o.logLevel, stream: gate, base: { pid: process.pid, hostname: hostname(), instance: instanceName } },
    apps,
    faults: o.fault,
    throttle: o.throttle ? { limit: o.throttleLimit, windowMs: o.throttleWindow } : undefined,
    tls: tls && { cert: tls.cert, key: tls.key },
    notifications: {
      ...DEFAULT_DISPATCHER,
      requestTimeoutMs: o.notifyTimeout,
      retry: { ...DEFAULT_DISPATCHER.retry, retryForMs: o.notifyRetryFor },
    },
  };
  // Imported here, not at the top: `--help`, `--version` and a start refused for its options
  // (or `callkeeper keep`) do not load the server's dependencies (~1 s of CPU).
  const { createCallkeeper } = await import('../server.js');
  const ck = await explainStoreErrors(
    () => explainDataDirErrors(() => createCallkeeper(config), o.store === undefined ? dataDir : undefined, label('data')),
    o.store === undefined ? undefined : label('store'),
  );
  let address: string;
  let tlsAddress: string | undefined;
  try {
    address = await listenOrExplain(() => ck.listen(o.host, o.port), o.host, o.port, label('port'), label('host'));
    tlsAddress = tls
      ? await listenOrExplain(() => ck.listenTls(o.host, httpsPort), o.host, httpsPort, label('httpsPort'), label('host'))
      : undefined;
  } catch (err) {
    await ck.close();
    throw err;
  }
  const authority = tlsAddress ?? address;
  const urls = {
    http: address,
    https: tlsAddress ?? null,
    graph: `${authority}/v1.0`,
    authority,
    tokenUrl: `${authority}/{tenant}/oauth2/v2.0/token`,
    control: `${address}/_callkeeper`,
    health: `${address}/_callkeeper/health`,
    caPath: tls?.local?.caPath ?? null,
    tlsNames: tls?.local?.names ?? null,
    data: ck.store.location,
    store: { kind: ck.store.kind, location: ck.store.location },
    instance: ck.instanceName,
    pid: process.pid,
  };
  const app = ck.apps.list()[0];
  const lines = [
    'callkeeper: the Microsoft Graph calls API, on your machine',
    `  Graph API    ${address}/v1.0  (and ${address}/beta)`,
    ...(tlsAddress ? [`  Graph API    ${tlsAddress}/v1.0  (TLS)`] : []),
    `  Token        ${authority}/{tenant}/oauth2/v2.0/token  (authority: ${authority})`,
    `  Clouds       global at /, US Gov L4 at /usgov, US Gov L5 (DoD) at /dod, China at /china`,
    `  Control API  ${address}/_callkeeper`,
    `  Bot tokens   ${address}/botframework/v1/.well-known/openidconfiguration  (validates notifications)`,
    ck.store.kind === 'redis'
      ? `  Store        ${ck.store.location}  (shared: every instance on it is one callkeeper; ${o.storeShards} shards)`
      : `  Data         ${ck.store.location === 'memory' ? 'in memory (no data directory)' : ck.store.location}`,
    `  Instance     ${ck.instanceName}`,
    `  keepAlive timeout ${o.keepaliveTimeout / 1000}s, time scale ${o.timeScale}x`,
  ];
  if (!isLoopbackBinding(ck.app.server.address())) {
    lines.push(
      '',
      `WARNING: listening on ${o.host}, reachable from the network, not only from this machine.`,
      ck.config.controlToken
        ? '  The control API requires the x-callkeeper-control-token header.'
        : '  The control API refuses every request: start with --control-token (or CALLKEEPER_CONTROL_TOKEN) to use it.',
    );
  }
  const local = tls?.local;
  if (local) {
    const ca = local.caPath;
    lines.push(
      '',
      local.created.ca
        ? `A NEW local CA was made (for ${local.names.join(', ')}): trust it (again, if you trusted an older one):`
        : "Trust callkeeper's local CA (once):",
      `  Node.js   NODE_EXTRA_CA_CERTS=${ca}`,
      `  Python    SSL_CERT_FILE=${ca}  (httpx, aiohttp; requests: REQUESTS_CA_BUNDLE=${ca})`,
      `  .NET      Linux, no root: SSL_CERT_FILE=${ca}  (system-wide: cp ${ca} /usr/local/share/ca-certificates/callkeeper.crt && update-ca-certificates)`,
      `            Windows: Import-Certificate -FilePath ${ca} -CertStoreLocation Cert:\\CurrentUser\\Root`,
      `  Names     ${local.names.join(', ')}  (more: --tls-san <name>; the CA signs for these names only)`,
      `  CA key    ${local.caKeyPath}  (kept apart from what is served; never leaves this machine)`,
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
  try {
    if (o.readyFile) writeReadyFile(o.readyFile, urls, label('readyFile'));
  } catch (err) {
    await ck.close();
    throw err;
  }
  if (json) event('ready', urls);
  human.write(`${lines.join('\n')}\n`);
  gate.open();

  started = ck;
  if (pendingSignal) stop(pendingSignal);
}
