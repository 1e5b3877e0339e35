import { faultRulesKind } from '../faults/fault-option.js';
import { parseRedisUrl } from '../store/redis/redis-url.js';
import { type OptionDef, type OptionValues, option } from './option-def.js';
import {
  booleanKind,
  durationKind,
  durationMs,
  enumKind,
  hostNameKind,
  integerKind,
  listKind,
  numberKind,
  type OptionKind,
  OptionValueError,
  portKind,
  sizeKind,
  stringKind,
} from './option-kinds.js';

/** A duration option: default and range as texts, the value in milliseconds. */
function duration(dflt: string, min: string, max: string, help: string): OptionDef<number> {
  return option({ kind: durationKind(min, max), default: durationMs(dflt) ?? 0, defaultText: dflt, help });
}

const path = (arg: string) => stringKind(arg, { nonEmpty: true });

/** A Redis store's URL, checked as RedisStore reads it (the value stays the text, password and all). */
const storeKind: OptionKind<string> = {
  arg: '<url>',
  parseText: (text) => {
    try {
      parseRedisUrl(text);
    } catch (err) {
      throw new OptionValueError((err as Error).message);
    }
    return text.trim();
  },
  parseJson: (v) => {
    if (typeof v !== 'string') throw new OptionValueError(`expected a redis:// or redis-cluster:// URL, got ${JSON.stringify(v)}`);
    return storeKind.parseText(v);
  },
  schema: { type: 'string', pattern: '^redis(-cluster)?://' },
  range: '',
};

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Every option of `callkeeper serve`, once. The key is the config-file key; the flag is its
 * kebab-case (`--keepalive-timeout`) and the environment variable CALLKEEPER_ + its snake
 * case (`CALLKEEPER_KEEPALIVE_TIMEOUT`). Adding an option is adding one entry here (then
 * `npm run docs` regenerates README's table and the JSON schema; a test checks they match).
 * Precedence: flags > environment > config file > default.
 */
export const SERVE_OPTIONS = {
  host: option({ kind: stringKind('<host>', { nonEmpty: true }), default: '127.0.0.1', help: 'address to listen on' }),
  port: option({ kind: portKind, default: 4545, help: 'port of the http listener; 0 picks a free one' }),
  httpsPort: option({ kind: portKind, default: 4546, help: 'port of the https listener; 0 picks a free one' }),
  https: option({ kind: booleanKind, default: true, help: 'an https listener next to the http one; --no-https: plain http only' }),
  data: option({
    kind: path('<dir>'),
    default: undefined,
    defaultText: './.callkeeper',
    help: 'directory of the SQLite store (callkeeper.db)',
  }),
  memory: option({
    kind: booleanKind,
    default: false,
    help: 'keep calls and settings in memory, none in a data directory (signing keys and TLS files: a per-user state directory, see README)',
  }),
  store: option({
    kind: storeKind,
    default: undefined,
    defaultText: 'SQLite in --data',
    help: 'keep calls, apps and virtual time in Redis: redis://[:password@]host:port/db or redis-cluster://host:port,host:port; every instance on one store is one callkeeper (README "Scale out")',
  }),
  storeShards: option({
    kind: integerKind('<n>', 1, 1024),
    default: 8,
    help: 'with --store: how many {ck:<n>} hash-tagged shards the calls are spread over; the same on every instance of one store',
  }),
  keepaliveTimeout: duration('45m', '1s', '30d', 'a call ends this long after its start or last keepAlive (virtual time)'),
  timeScale: option({
    kind: numberKind('<n>', 0.001, 1_000_000),
    default: 1,
    help: 'virtual time runs n times faster than the wall clock',
  }),
  establishDelay: duration('1s', '1ms', '1h', "how long (virtual) an outgoing call stays 'establishing'"),
  promptDuration: duration('3s', '1ms', '10m', 'how long (virtual) each prompt of a playPrompt or recordResponse plays'),
  inviteDelay: duration('2s', '1ms', '10m', 'how long (virtual) an invited participant takes to join'),
  transferStep: duration('1s', '1ms', '10m', 'how long (virtual) each transfer step takes (transferring, transferAccepted, terminated)'),
  tokenLifetime: duration(
    '3599s',
    '10m',
    '1d',
    'lifetime of access tokens (expires_in), on the wall clock whatever the time scale (docs/decisions.md)',
  ),
  notifyTimeout: duration('10s', '100ms', '5m', 'limit of one notification request (wall clock)'),
  notifyRetryFor: duration('1h', '1s', '7d', 'retry a failing notification this long (virtual), then dead-letter it'),
  strict: option({
    kind: booleanKind,
    default: false,
    help: "Graph's callbackUri rule exactly: https only (otherwise http to a loopback host is accepted too)",
  }),
  bodyLimit: option({
    kind: sizeKind(1024, 64 * 1024 * 1024),
    default: 1024 * 1024,
    defaultText: '1mb',
    help: 'largest accepted request body (larger: 413)',
  }),
  logLevel: option({ kind: enumKind(LOG_LEVELS, '<level>'), default: 'warn', help: 'the least severe log lines written' }),
  logFormat: option({
    kind: enumKind(['text', 'json'] as const, '<format>'),
    default: 'text',
    help: 'json: stdout is JSON lines only, a "ready" event first (the banner goes to stderr)',
  }),
  readyFile: option({
    kind: path('<file>'),
    default: undefined,
    help: 'once serving, write the bound URLs there as JSON ({"http", "https", "pid", ...})',
  }),
  cert: option({ kind: path('<file>'), default: undefined, help: "your own TLS certificate (PEM) instead of callkeeper's" }),
  key: option({ kind: path('<file>'), default: undefined, help: 'the private key (PEM) of --cert' }),
  tlsDir: option({
    kind: path('<dir>'),
    default: undefined,
    defaultText: '<data>/tls',
    help: 'where callkeeper keeps its local CA and server certificate (--memory: a per-user directory, see README)',
  }),
  tlsSan: option({
    kind: listKind(hostNameKind),
    default: [] as string[],
    repeatable: true,
    help: 'another DNS name or IP address for the server certificate (repeatable; env: comma-separated)',
  }),
  caKeyDir: option({
    kind: path('<dir>'),
    default: undefined,
    defaultText: '~/.local/state/callkeeper/ca-keys',
    help: "where the local CA's private key is kept: per user, apart from the served material (never in <data>)",
  }),
  signingKeyDir: option({
    kind: path('<dir>'),
    default: undefined,
    defaultText: '--memory: ~/.local/state/callkeeper/signing-keys',
    help: 'where the token and notification signing keys come from (made there on first use) when the store has none yet; a store that has keys keeps its own',
  }),
  controlToken: option({
    kind: stringKind('<secret>', { nonEmpty: true }),
    default: undefined,
    help: 'required in the x-callkeeper-control-token header of every /_callkeeper request; needed to use the control API when --host is not a loopback address',
  }),
  fault: option({
    kind: faultRulesKind,
    default: [] as unknown[],
    repeatable: true,
    help: 'a fault rule, JSON, as POST /_callkeeper/faults takes it (repeatable; config file: an array)',
  }),
  throttle: option({
    kind: booleanKind,
    default: false,
    help: "429 TooManyRequests past --throttle-limit requests per --throttle-window per app and tenant (Graph's communications limit)",
  }),
  throttleLimit: option({ kind: integerKind('<n>', 1, 1_000_000_000), default: 50_000, help: 'requests per window with --throttle' }),
  throttleWindow: duration('15s', '1ms', '1d', 'the window of --throttle (virtual time)'),
  config: option({
    kind: path('<file>'),
    default: undefined,
    notInFile: true,
    help: 'config file (JSON): any other option by its key, and "apps" (see README)',
  }),
} as const;

export type ServeOptions = OptionValues<typeof SERVE_OPTIONS>;
