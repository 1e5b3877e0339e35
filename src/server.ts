import { hostname } from 'node:os';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type AppRegistration, AppRegistry, DEFAULT_APP } from './auth/apps.js';
import { CLOUDS, type Cloud } from './auth/clouds.js';
import { keyDirectory } from './auth/key-directory.js';
import { SecretThrottle } from './auth/secret-throttle.js';
import { loadSigningKey, newKey, processKey, type SigningKey } from './auth/signing-key.js';
import { TokenIssuer } from './auth/token-issuer.js';
import { DEFAULT_TOKEN_LIFETIME_S, TokenRevocations } from './auth/token-lifetime.js';
import { TokenVerifier } from './auth/token-verifier.js';
import { type BotActionConfig, BotActionService, DEFAULT_BOT_ACTIONS } from './calls/bot-actions.js';
import { CallService } from './calls/call-service.js';
import { DueScheduler } from './calls/due-scheduler.js';
import { type Clock, wallTime } from './clock/clock.js';
import { SharedClock } from './clock/shared-clock.js';
import { CachedFaults } from './faults/cached-faults.js';
import { FaultInjector } from './faults/fault-injector.js';
import { addFaultRule } from './faults/fault-routes.js';
import { notificationFaults } from './faults/notification-faults.js';
import { Throttle, type ThrottleOptions } from './faults/throttle.js';
import { buildHttpApp, type ConnectionLimits } from './http/app.js';
import { boundUrl } from './http/control-guard.js';
import { attachTls } from './http/tls-listener.js';
import { DEFAULT_JOURNAL_SIZE, RequestJournal } from './journal/request-journal.js';
import { DomainLog } from './logging/domain-log.js';
import { createLogger, type LoggerConfig } from './logging/logger.js';
import { CallkeeperMetrics } from './metrics/metrics.js';
import { DEFAULT_DISPATCHER, type DispatcherOptions, NotificationDispatcher } from './notifications/dispatcher.js';
import { NotificationSigner } from './notifications/notification-signer.js';
import type { BotActionStore } from './store/bot-action-store.js';
import type { FaultStore } from './store/fault-store.js';
import type { JournalStore } from './store/journal-store.js';
import type { OutboxBounds } from './store/outbox-port.js';
import type { RedisStore } from './store/redis/redis-store.js';
import { SqliteBotActionStore } from './store/sqlite-bot-action-store.js';
import { SqliteControlStore } from './store/sqlite-control-store.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { Store } from './store/store.js';
import { StoreConfigError } from './store/store-errors.js';
import type { ThrottleStore } from './store/throttle-store.js';
import { EventHub } from './ui/event-hub.js';

export interface CallkeeperConfig {
  /** Directory of the SQLite file; undefined: in memory, nothing on disk. */
  dataDir: string | undefined;
  /**
   * A Redis store instead of SQLite (redis://host:port/db, redis-cluster://host:port,...):
   * every instance on it is one callkeeper (docs/architecture.md, "Several instances").
   */
  storeUrl?: string | undefined;
  /** The Redis store's shard count; the same on every instance of one store (default 8). */
  storeShards?: number;
  /**
   * Where a store without signing keys yet takes them from (made there on first use, 0600 in a
   * 0700 directory): an in-memory server keeps its keys across a restart (`serve --memory`: the
   * per-user state directory), and fresh stores started from one directory sign alike. A store
   * that has keys keeps its own (docs/decisions.md, "Signing keys of in-memory servers").
   */
  signingKeyDir?: string;
  keepAliveTimeoutMs: number;
  /** Virtual time runs this many times faster than the wall clock. */
  timeScale: number;
  establishDelayMs: number;
  strictCallbackUri: boolean;
  bodyLimit: number;
  endedRetentionMs: number;
  /**
   * The log: `false` (none), pino's options with an optional `stream`, or a pino logger of your
   * own. Made first and handed to Fastify: request lines and domain events are one stream.
   */
  logger: LoggerConfig;
  apps: AppRegistration[];
  /** Certificate and key for the https app; none: http only. */
  tls?: { key: string; cert: string } | undefined;
  /** Timeouts and the connection cap of each listener (wall clock); DEFAULT_LIMITS in http/app.ts. */
  limits?: ConnectionLimits;
  /** The control API's shared secret; required on every control request when set (docs/security.md). */
  controlToken?: string | undefined;
  /** Delivery of notifications to bots. */
  notifications: DispatcherOptions;
  /** How long (virtual) prompts, invitations and transfers take. */
  botActions: BotActionConfig;
  /** Lifetime of access tokens, wall-clock seconds (600 to 86400). */
  tokenLifetimeS: number;
  /** Bounds on undelivered notifications (the store's DEFAULT_OUTBOX_BOUNDS if unset). */
  outboxBounds?: OutboxBounds;
  /** Names this instance in health and x-ms-ags-diagnostic (default: the host name and pid). */
  instanceName?: string;
  /** Overrides: tests pass a ManualClock or a store of their own. */
  clock?: Clock;
  /** The wall clock access tokens live on (epoch ms); tests may pass their own. */
  wallTime?: () => number;
  store?: Store;
  /** The store of rosters and operations; by default the one beside the call store. */
  botActionStore?: BotActionStore;
  /** Throttling of Graph requests per app and tenant; undefined: off. */
  throttle?: ThrottleOptions | undefined;
  /** Fault rules to arm at start (config file, --fault), as POST /_callkeeper/faults takes them. */
  faults?: unknown[];
  /** Entries the request journal keeps. */
  journalSize?: number;
  /** Fault rules, throttle counters and the journal; defaults to SQLite beside the calls. */
  controlStore?: FaultStore & ThrottleStore & JournalStore & { close(): Promise<void> };
  /** The draw behind fault rules' `rate`. */
  random?: () => number;
}

/** In memory by default: a library call writes nothing to disk unless given a dataDir (the CLI's default is ./.callkeeper). */
export const DEFAULTS: CallkeeperConfig = {
  dataDir: undefined,
  keepAliveTimeoutMs: 45 * 60_000,
  timeScale: 1,
  establishDelayMs: 1_000,
  strictCallbackUri: false,
  bodyLimit: 1024 * 1024,
  endedRetentionMs: 24 * 3600_000,
  logger: { level: 'warn' },
  apps: [DEFAULT_APP],
  notifications: DEFAULT_DISPATCHER,
  botActions: DEFAULT_BOT_ACTIONS,
  tokenLifetimeS: DEFAULT_TOKEN_LIFETIME_S,
};

export interface Callkeeper {
  /** The plain-http app. */
  readonly app: FastifyInstance;
  /**
   * The app serving https, when TLS material was given: the same app as `app` (one app
   * serves both schemes; `listenTls` starts its https listener).
   */
  readonly tlsApp: FastifyInstance | undefined;
  readonly clock: Clock;
  /** The one logger: Fastify's request lines and the domain events (logging/domain-log.ts). */
  readonly logger: Logger;
  readonly store: Store;
  readonly service: CallService;
  readonly scheduler: DueScheduler;
  readonly botActions: BotActionService;
  /** Completes operations (prompts, recordings, invitations, transfers) on time. */
  readonly operationScheduler: DueScheduler;
  readonly apps: AppRegistry;
  readonly issuer: TokenIssuer;
  /** The global cloud's verifier (each cloud has its own, see verifiers). */
  readonly verifier: TokenVerifier;
  readonly verifiers: ReadonlyMap<Cloud['name'], TokenVerifier>;
  readonly key: SigningKey;
  readonly notifier: NotificationDispatcher;
  readonly notificationSigner: NotificationSigner;
  readonly config: CallkeeperConfig;
  /** Names this instance in health, logs and x-ms-ags-diagnostic (host name and pid unless configured). */
  readonly instanceName: string;
  /** Starts listening; resolves with the address (http://host:port). */
  listen(host: string, port: number): Promise<string>;
  /** Starts listening for https; resolves with the address (https://host:port). */
  listenTls(host: string, port: number): Promise<string>;
  /** Stops accepting requests, lets in-flight ones finish, stops the scheduler, closes the store. */
  close(): Promise<void>;
}

/**
 * The composition root: builds the clock, store, domain, auth and HTTP app and wires them.
 * Calls that expired while the server was down are ended before this resolves.
 */
export async function createCallkeeper(overrides: Partial<CallkeeperConfig> = {}): Promise<Callkeeper> {
  const config: CallkeeperConfig = { ...DEFAULTS, ...overrides };
  // First: everything below logs through it, and so does Fastify.
  const logger = createLogger(config.logger);
  const instanceName = config.instanceName ?? `${hostname()}:${process.pid}`;
  const store = config.store ?? (await openStore(config, instanceName));
  const redis = await redisOf(store);
  // Virtual time lives in the store: every instance on it agrees, and a restart goes on from it.
  const shared = config.clock ? undefined : await SharedClock.open(store, { scale: config.timeScale });
  const clock: Clock = config.clock ?? (shared as SharedClock);
  const service = new CallService(store, clock, {
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    establishDelayMs: config.establishDelayMs,
    strictCallbackUri: config.strictCallbackUri,
    endedRetentionMs: config.endedRetentionMs,
  });
  const controlStore =
    config.controlStore ??
    (redis
      ? new redis.RedisControlStore(redis.store.connection)
      : new SqliteControlStore(config.dataDir === undefined ? {} : { dataDir: config.dataDir }));
  // On Redis the rules every request is matched against are cached between change notices
  // (faults/cached-faults.ts): a request when no rule is armed costs no round trip for them.
  const faultRules = config.controlStore === undefined && redis ? new CachedFaults(controlStore, (l) => store.watch(l)) : controlStore;
  const injector = new FaultInjector(faultRules, clock, config.random);
  const throttle = config.throttle ? new Throttle(controlStore, clock, config.throttle) : undefined;
  // This process alone writes its own SQLite control.db (one writer per data directory): the
  // journal is kept in memory and written behind, so a request costs it no write.
  const journal = new RequestJournal(controlStore, config.journalSize ?? DEFAULT_JOURNAL_SIZE, {
    local: config.controlStore === undefined && !redis,
    onSaveError: (err) => logger.warn({ err }, 'writing the request journal to the store failed'),
  });
  await journal.load();
  for (const [i, rule] of (config.faults ?? []).entries()) {
    await addFaultRule(controlStore, clock, rule, `config-${i + 1}`);
  }
  const apps = new AppRegistry(config.apps, store);
  await apps.refresh();
  const unwatchApps = store.watch((change) => {
    if (change.kind === 'apps') apps.refresh().catch(() => undefined);
  });
  // A store without keys takes signingKeyDir's; without one, an in-memory store (no data
  // directory, no Redis, none passed in) takes the keys this process made for its other
  // in-memory servers, if any (docs/decisions.md, "Signing keys of in-memory servers").
  const inMemory = config.store === undefined && config.storeUrl === undefined && config.dataDir === undefined;
  const makeKey = config.signingKeyDir !== undefined ? keyDirectory(config.signingKeyDir) : inMemory ? processKey : newKey;
  const key = await loadSigningKey(store, 'token-signing-key', makeKey);
  // Tokens live on the wall clock, not the virtual one (docs/decisions.md, "Time of tokens").
  const tokenTime = config.wallTime ?? wallTime;
  const revocations = new TokenRevocations();
  const issuer = new TokenIssuer(key, { wallTime: tokenTime, lifetimeS: config.tokenLifetimeS, revocations });
  const verifiers = new Map(
    CLOUDS.map((cloud) => [cloud.name, new TokenVerifier(key, apps, { wallTime: tokenTime, revocations, cloud })] as const),
  );
  const verifier = verifiers.get('global') as TokenVerifier;

  // While due work runs (a mass expiry above all), the dispatcher claims nothing new: the calls
  // end and their notifications are queued first, then delivered (docs/benchmarks.md).
  const dueWork = { processDue: () => notifier.holdWhile(() => service.processDue()), nextDueAt: () => service.nextDueAt() };
  const scheduler = new DueScheduler(dueWork, clock, logger);
  service.observe(scheduler);
  const notificationSigner = await NotificationSigner.load(store, clock, makeKey);
  const metrics = new CallkeeperMetrics(store);
  service.observe(metrics);
  const domainLog = new DomainLog(logger);
  service.observe(domainLog);
  const events = new EventHub(clock);
  service.observe(events);
  const notifier = new NotificationDispatcher(store, clock, notificationSigner, logger, {
    ...config.notifications,
    beforeDelivery: notificationFaults(injector),
    afterDelivery: (e, attempt) => {
      metrics.delivery(attempt);
      domainLog.delivery(e, attempt);
      events.delivery(e, attempt);
    },
  });
  service.observe(notifier);
  const botActionStore = botActionStoreFor(config, store, redis);
  const botActions = new BotActionService(botActionStore, store, clock, config.botActions, (id, at, result) =>
    service.endByOperation(id, at, result),
  );
  const operationScheduler = new DueScheduler(botActions, clock, logger);
  service.observe(botActions);
  botActions.onOperation((op, how, cause) => domainLog.operation(op, how, cause));
  botActions.onChange((at) => {
    notifier.onCallChanged();
    if (at !== undefined) operationScheduler.wakeBy(at);
  });
  const deps = {
    clock,
    store,
    service,
    scheduler,
    operationScheduler,
    botActions,
    apps,
    issuer,
    verifiers,
    key,
    notifier,
    notificationSigner,
    botActionStore,
    faults: controlStore,
    throttleStore: controlStore,
    injector,
    throttle,
    journal,
    metrics,
    // Guessing secrets is slowed on the wall clock: it is real time an attacker spends.
    secretThrottle: new SecretThrottle(tokenTime),
    events,
  };
  const httpOptions = {
    bodyLimit: config.bodyLimit,
    instanceName,
    logger,
    controlToken: config.controlToken,
    limits: config.limits,
  };
  const app = buildHttpApp(deps, httpOptions);
  // https is served by the same app (one set of routes and hooks for both schemes).
  const tls = config.tls ? attachTls(app, config.tls, clock, config.limits) : undefined;
  if (redis) await checkPersistence(redis.store, logger, instanceName);
  await scheduler.start();
  await operationScheduler.start();
  notifier.start();
  const built = app;

  let closed: Promise<void> | undefined;
  return {
    app: built,
    tlsApp: tls ? built : undefined,
    clock,
    logger,
    store,
    service,
    scheduler,
    botActions,
    operationScheduler,
    apps,
    issuer,
    verifier,
    verifiers,
    key,
    notifier,
    notificationSigner,
    config,
    instanceName,
    async listen(host, port) {
      // Fastify names 0.0.0.0 as 127.0.0.1; say what is really bound.
      const url = await built.listen({ host, port });
      return boundUrl('http', built.server.address(), url);
    },
    async listenTls(host, port) {
      if (!tls) throw new Error('no TLS certificate was configured');
      return tls.listen(host, port);
    },
    close() {
      closed ??= (async () => {
        // Delivery stops first, with its own grace period: a request that waits on it (a flush)
        // must not hold the HTTP close behind a bot that never answers.
        const delivery = notifier.stop();
        // Closes the https servers too (tls-listener.ts).
        await built.close();
        scheduler.stop();
        operationScheduler.stop();
        await scheduler.idle();
        await operationScheduler.idle();
        await delivery;
        unwatchApps();
        shared?.close();
        await store.close();
        await journal.flush().catch((err: unknown) => logger.warn({ err }, 'writing the request journal to the store failed'));
        await controlStore.close();
      })();
      return closed;
    },
  };
}

/**
 * The Redis store's modules, and ioredis with them, are loaded only when the store is a Redis
 * one: a SQLite server does not pay for them at start.
 */
async function redisModules() {
  const [{ RedisStore }, { RedisBotActionStore }, { RedisControlStore }] = await Promise.all([
    import('./store/redis/redis-store.js'),
    import('./store/redis/redis-bot-action-store.js'),
    import('./store/redis-control-store.js'),
  ]);
  return { RedisStore, RedisBotActionStore, RedisControlStore };
}

type RedisWiring = Omit<Awaited<ReturnType<typeof redisModules>>, 'RedisStore'> & { store: RedisStore };

/** The Redis companions of a Redis store (its kind says whether to load them); undefined for any other store. */
async function redisOf(store: Store): Promise<RedisWiring | undefined> {
  if (store.kind !== 'redis') return undefined;
  const { RedisStore, ...companions } = await redisModules();
  return store instanceof RedisStore ? { ...companions, store } : undefined;
}

function botActionStoreFor(config: CallkeeperConfig, store: Store, redis: RedisWiring | undefined): BotActionStore {
  if (config.botActionStore) return config.botActionStore;
  if (store instanceof SqliteStore) return new SqliteBotActionStore(store);
  if (redis) return new redis.RedisBotActionStore(redis.store);
  throw new Error('this call store has no bot-action store beside it: pass botActionStore');
}

/** SQLite in the data directory, or Redis when a store URL is given (with this instance's name on its sweep claims). */
async function openStore(config: CallkeeperConfig, instanceName: string): Promise<Store> {
  const bounds = config.outboxBounds ? { outboxBounds: config.outboxBounds } : {};
  if (config.storeUrl === undefined)
    return new SqliteStore({ ...(config.dataDir === undefined ? {} : { dataDir: config.dataDir }), ...bounds });
  const shards = config.storeShards ?? 8;
  const { RedisStore } = await redisModules();
  const store = await RedisStore.open({ url: config.storeUrl, shards, instanceId: instanceName, ...bounds });
  // Instances with different shard counts would each see part of the calls: the first one sets it.
  const stored = await store.getOrInitSetting('redisShards', String(shards));
  if (stored !== String(shards)) {
    await store.close();
    throw new StoreConfigError(`the store at ${store.location} is sharded ${stored} ways; start with --store-shards ${stored}`);
  }
  return store;
}

/**
 * Says at start what an acknowledged change survives (docs/decisions.md, "Durability on Redis"):
 * without AOF, a Redis restart loses everything since its last snapshot, or all of it.
 */
async function checkPersistence(store: RedisStore, log: FastifyBaseLogger, instance: string): Promise<void> {
  const where = { instance, store: store.location };
  let p: { aof: boolean; fsync: string; rdb: boolean };
  try {
    p = await store.persistence();
  } catch (err) {
    // Managed Redis often forbids CONFIG GET.
    log.warn({ ...where, err }, 'could not read the Redis persistence settings (CONFIG GET); see docs/decisions.md for what to set');
    return;
  }
  if (!p.aof)
    log.warn(
      { ...where, appendonly: 'no', snapshots: p.rdb },
      'Redis persistence: AOF is off, so a Redis restart loses acknowledged changes (all of them, or those since the last snapshot); set appendonly yes and appendfsync everysec (at most about 1 s lost) or always (nothing acknowledged lost)',
    );
  else if (p.fsync === 'no')
    log.warn(
      { ...where, appendonly: 'yes', appendfsync: 'no' },
      'Redis persistence: appendfsync no leaves flushing to the OS (about 30 s of acknowledged changes lost in a power cut); set appendfsync everysec or always',
    );
  else log.info({ ...where, appendonly: 'yes', appendfsync: p.fsync }, 'Redis persistence: AOF on');
}
