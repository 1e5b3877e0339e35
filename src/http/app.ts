import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { AppRegistry } from '../auth/apps.js';
import { type Cloud, cloudOfPath } from '../auth/clouds.js';
import type { SecretThrottle } from '../auth/secret-throttle.js';
import type { SigningKey } from '../auth/signing-key.js';
import type { TokenIssuer } from '../auth/token-issuer.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { BotActionService } from '../calls/bot-actions.js';
import type { CallService } from '../calls/call-service.js';
import type { DueScheduler } from '../calls/due-scheduler.js';
import type { Clock } from '../clock/clock.js';
import { type GraphError, graphErrors } from '../errors/graph-errors.js';
import { registerFaultHooks } from '../faults/fault-hooks.js';
import type { FaultInjector } from '../faults/fault-injector.js';
import { registerFaultRoutes } from '../faults/fault-routes.js';
import type { Throttle } from '../faults/throttle.js';
import { registerJournalHooks } from '../journal/journal-hooks.js';
import { registerJournalRoutes } from '../journal/journal-routes.js';
import type { RequestJournal } from '../journal/request-journal.js';
import type { CallkeeperMetrics } from '../metrics/metrics.js';
import { registerMetrics } from '../metrics/metrics-routes.js';
import type { NotificationDispatcher } from '../notifications/dispatcher.js';
import type { NotificationSigner } from '../notifications/notification-signer.js';
import type { BotActionStore } from '../store/bot-action-store.js';
import type { FaultStore } from '../store/fault-store.js';
import type { Store } from '../store/store.js';
import type { ThrottleStore } from '../store/throttle-store.js';
import { registerDashboard } from '../ui/dashboard-routes.js';
import type { EventHub } from '../ui/event-hub.js';
import { registerAuthRoutes } from './auth-routes.js';
import { registerBodyParsers } from './body-parsers.js';
import { controlGuard, isControlPath } from './control-guard.js';
import { registerControlRoutes } from './control-routes.js';
import { registerGraphRoutes, unknownSegment } from './graph-routes.js';
import { registerNotImplementedRoutes } from './not-implemented-routes.js';
import { registerNotificationRoutes } from './notification-routes.js';
import { registerOperationRoutes } from './operation-routes.js';
import { registerParticipantRoutes } from './participant-routes.js';
import { registerPeopleControlRoutes } from './people-control-routes.js';
import { registerResetRoutes } from './reset-routes.js';
import { ROUTER_OPTIONS, registerShadowedWrongMethods, wrongMethodError, wrongMethodHook } from './wrong-method.js';
import './request-context.js';
import { clientErrorResponder, diagnosticHeader, sendGraphError, setWireHeaders, toGraphError } from './wire.js';

export interface HttpDeps {
  clock: Clock;
  store: Store;
  service: CallService;
  scheduler: DueScheduler;
  botActions: BotActionService;
  apps: AppRegistry;
  issuer: TokenIssuer;
  verifiers: ReadonlyMap<Cloud['name'], TokenVerifier>;
  key: SigningKey;
  notifier: NotificationDispatcher;
  notificationSigner: NotificationSigner;
  botActionStore: BotActionStore;
  faults: FaultStore;
  throttleStore: ThrottleStore;
  injector: FaultInjector;
  /** Undefined: no throttling (the default). */
  throttle: Throttle | undefined;
  journal: RequestJournal;
  metrics: CallkeeperMetrics;
  secretThrottle: SecretThrottle;
  /** This instance's events for the dashboard's stream. */
  events: EventHub;
}

export interface HttpOptions {
  /** Largest accepted request body, bytes. */
  bodyLimit: number;
  /** Names this instance in x-ms-ags-diagnostic. */
  instanceName: string;
  /** callkeeper's one logger (logging/logger.ts); Fastify logs requests through it. */
  logger: Logger;
  /** How long a client may take, and how many connections it may hold (docs/security.md). */
  limits?: ConnectionLimits | undefined;
  /** The control API's shared secret (--control-token); see control-guard.ts. */
  controlToken?: string | undefined;
}

/** Wall-clock limits of a listener (Node's timers; virtual time does not apply to sockets). */
export interface ConnectionLimits {
  /** All request headers must have arrived within this (Node's headersTimeout). */
  headersTimeoutMs: number;
  /** The whole request, body included, must have arrived within this (requestTimeout). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (keepAliveTimeout). */
  keepAliveTimeoutMs: number;
  /** A socket with no traffic either way (a client that stopped reading) is closed after this. */
  idleSocketTimeoutMs: number;
  /** Connections beyond this many are closed as they arrive, so descriptors never run out. */
  maxConnections: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 65_000,
  idleSocketTimeoutMs: 120_000,
  maxConnections: 8_192,
};

/** The options Node's http and https servers take from the limits. */
export function nodeHttpOptions(limits: ConnectionLimits) {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // Node checks the header and request deadlines on this period (default 30 s: far too coarse).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
  };
}

/**
 * Fastify's own schema compilers (ajv, fast-json-stringify), loaded from Fastify's dependencies
 * when a route with a JSON schema is first registered. callkeeper's routes have none (bodies are
 * checked in the domain, with Graph's errors), so a start does not pay for loading them.
 */
const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('fastify'));
type Compilers = Required<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>>;
function lazySchemaCompilers(): Compilers {
  let validator: Compilers['buildValidator'] | undefined;
  let serializer: Compilers['buildSerializer'] | undefined;
  return {
    buildValidator: (...args) => {
      validator ??= fastifyRequire('@fastify/ajv-compiler')() as Compilers['buildValidator'];
      return validator(...args);
    },
    buildSerializer: (...args) => {
      serializer ??= fastifyRequire('@fastify/fast-json-stringify-compiler')() as Compilers['buildSerializer'];
      return serializer(...args);
    },
  };
}

/**
 * Builds the HTTP app without listening: tests inject into it, the CLI listens. The same app
 * serves https when given a certificate (tls-listener.ts).
 */
export function buildHttpApp(deps: HttpDeps, opts: HttpOptions): FastifyInstance {
  const diagnostic = diagnosticHeader(opts.instanceName);
  const { clock } = deps;
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const nodeHttp = nodeHttpOptions(limits);
  const app = Fastify({
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionTimeout: limits.idleSocketTimeoutMs,
    http: nodeHttp,
    loggerInstance: opts.logger,
    // Request lines carry `requestId`, the same id as the request-id header and the domain events.
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    bodyLimit: opts.bodyLimit,
    routerOptions: ROUTER_OPTIONS,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    return503OnClosing: false,
    clientErrorHandler: clientErrorResponder(clock),
    frameworkErrors: (err, req, reply) => sendGraphError(req, reply, toGraphError(err, opts.bodyLimit), clock, diagnostic),
    schemaController: { compilersFactory: lazySchemaCompilers() },
  }) as unknown as FastifyInstance;
  app.server.maxConnections = limits.maxConnections;

  app.decorateRequest('principal', undefined);
  app.decorateRequest('clientRequestId', '');
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Hooks every request runs are callback-style where they do not wait: an async hook costs
  // a promise and a turn of the microtask queue each (docs/benchmarks.md).
  app.addHook('onRequest', (req, reply, done) => {
    setWireHeaders(req, reply, diagnostic);
    done(closing ? graphErrors.unavailable() : undefined);
  });

  registerBodyParsers(app);
  // Every /_callkeeper route, whoever registers it, gets the control guard first.
  const guard = controlGuard({ token: opts.controlToken });
  app.addHook('onRoute', (route) => {
    if (!isControlPath(route.url)) return;
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [guard, ...own];
  });
  app.setErrorHandler((err, req, reply) => {
    const g = toGraphError(err, opts.bodyLimit);
    if (g.status >= 500 && g.code === 'InternalServerError') req.log.error({ err, url: req.url }, 'unexpected error');
    sendGraphError(req, reply, g, clock, diagnostic);
  });
  app.setNotFoundHandler((req, reply) => {
    const wrongMethod = wrongMethodError(req);
    if (wrongMethod) return sendGraphError(req, reply, wrongMethod, clock, diagnostic);
    const fullPath = (req.url.split('?')[0] ?? '').replace(/\/+$/, '');
    const { cloud, rest: path } = cloudOfPath(fullPath);
    const [, version, ...rest] = path.split('/');
    let err: GraphError;
    if (version === 'v1.0' || version === 'beta') {
      let segment: string;
      try {
        segment = decodeURIComponent(unknownSegment(rest, cloud));
      } catch {
        segment = unknownSegment(rest, cloud);
      }
      err =
        rest.length === 0
          ? graphErrors.segmentNotFound({ segment: version })
          : graphErrors.segmentNotFound({ segment: segment.slice(0, 200) });
    } else {
      err = graphErrors.notFound({ path: fullPath.slice(0, 200) });
    }
    sendGraphError(req, reply, err, clock, diagnostic);
  });

  // Before the routes: the journal and the faults see every Graph request.
  const recordRequest = registerJournalHooks(app, deps.journal, clock);
  registerFaultHooks(app, { ...deps, recordCut: (req, ms) => recordRequest(req, null, ms) });
  registerMetrics(app, deps.metrics, guard);
  registerDashboard(app, deps.events, guard);

  registerGraphRoutes(app, deps);
  registerAuthRoutes(app, deps);
  registerControlRoutes(app, { ...deps, instanceName: opts.instanceName });
  registerNotificationRoutes(app, deps);
  registerParticipantRoutes(app, deps);
  registerOperationRoutes(app, deps);
  registerPeopleControlRoutes(app, deps);
  registerFaultRoutes(app, deps);
  registerJournalRoutes(app, deps.journal);
  registerResetRoutes(app, deps);
  // Last: it fills in only the documented paths no one above serves.
  registerNotImplementedRoutes(app, deps);
  registerShadowedWrongMethods(app);
  // Last of the onRequest hooks, where a route's own would run (wrong-method.ts).
  app.addHook('onRequest', wrongMethodHook(app, guard));
  return app;
}
