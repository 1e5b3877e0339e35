import type { FastifyInstance } from 'fastify';
import ms from 'ms';
import { parseAppRegistration } from '../auth/app-config.js';
import { MAX_REGISTERED_APPS, registerApp } from '../auth/app-store.js';
import type { AppRegistration, AppRegistry } from '../auth/apps.js';
import type { TokenIssuer } from '../auth/token-issuer.js';
import type { CallService } from '../calls/call-service.js';
import type { CallRecord } from '../calls/call-types.js';
import type { DueScheduler } from '../calls/due-scheduler.js';
import { type Clock, MAX_VIRTUAL_TIME } from '../clock/clock.js';
import { graphErrors } from '../errors/graph-errors.js';
import type { Store } from '../store/store.js';
import { causeOf } from './request-context.js';
import { type Req, resource } from './resource.js';
import { iso } from './wire.js';

export interface ControlRouteDeps {
  service: CallService;
  store: Store;
  /** Names this instance in health. */
  instanceName: string;
  clock: Clock;
  scheduler: DueScheduler;
  /** Completes bot operations (prompts, recordings, transfers) due by the new time. */
  operationScheduler?: DueScheduler;
  apps: AppRegistry;
  issuer: TokenIssuer;
}

/** Longest single clock advance accepted: ten years. */
const MAX_ADVANCE_MS = 10 * 365 * 24 * 3600 * 1000;

function describe(call: CallRecord, now: number) {
  return {
    id: call.id,
    state: call.state,
    direction: call.direction,
    appId: call.owner.appId,
    tenantId: call.owner.tenantId,
    callbackUri: call.resource.callbackUri ?? null,
    createdDateTime: iso(call.createdAt),
    lastKeepAliveDateTime: iso(call.lastKeepAliveAt),
    deadlineDateTime: iso(call.deadline),
    timeLeftMs: call.deadline === null ? null : Math.max(0, call.deadline - now),
    endedDateTime: iso(call.endedAt),
    resultInfo: call.resultInfo,
  };
}

const bad = (detail: string) => graphErrors.invalidControlRequest({ detail });

function describeApp(a: AppRegistration, origin: string) {
  return {
    displayName: a.displayName,
    tenantId: a.tenantId,
    clientId: a.clientId,
    clientSecret: a.clientSecret,
    roles: a.roles,
    callbackUri: a.callbackUri ?? null,
    tokenEndpoint: `${origin}/${a.tenantId}/oauth2/v2.0/token`,
    scope: 'https://graph.microsoft.com/.default',
  };
}

/** ms("") and other bad text throw; any text that is not a duration is simply not a number. */
function durationText(text: string): number | undefined {
  try {
    return ms(text as ms.StringValue);
  } catch {
    return undefined;
  }
}

/** Parses a duration given as milliseconds (number) or text such as "45m", and checks it keeps time within bounds. */
function parseAdvance(body: unknown, now: number): number {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('Send a JSON body {"ms": <milliseconds>}.');
  const raw = (body as Record<string, unknown>).ms;
  const value = typeof raw === 'string' ? durationText(raw.slice(0, 100)) : raw;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || !Number.isInteger(value) || value > MAX_ADVANCE_MS) {
    throw bad('\'ms\' must be a whole number of milliseconds from 0 to 10 years, or a duration such as "45m".');
  }
  if (now + value > MAX_VIRTUAL_TIME) {
    throw bad(
      `Advancing by ${value} ms would move virtual time past ${iso(MAX_VIRTUAL_TIME)}, the latest callkeeper supports; it is now ${iso(now)}.`,
    );
  }
  return value;
}

/** `{}`, no body, or `{"appId": "<a registered client id>"}`. */
function parseTokenExpiry(body: unknown, apps: AppRegistry): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) throw bad('Send no body, {} or {"appId": "<client id>"}.');
  const extra = Object.keys(body).filter((k) => k !== 'appId');
  if (extra.length) throw bad(`Unknown property '${extra[0]?.slice(0, 100)}'; only 'appId' is accepted.`);
  const appId = (body as Record<string, unknown>).appId;
  if (appId === undefined) return undefined;
  if (typeof appId !== 'string' || !apps.has(appId)) throw bad(`'appId' must be the client id of a registered app.`);
  return appId;
}

/** Control API for tests and people, outside Graph's namespace, behind the control guard (control-guard.ts). */
export function registerControlRoutes(app: FastifyInstance, deps: ControlRouteDeps): void {
  const { service, store, clock, scheduler, apps, issuer, instanceName } = deps;
  const base = '/_callkeeper';

  const clockState = () => {
    const now = clock.now();
    return { now: iso(now), epochMs: now, scale: clock.scale };
  };

  resource(
    app,
    `${base}/health`,
    {
      GET: async () => ({
        status: 'ok',
        instance: instanceName,
        store: store.location,
        storeKind: store.kind,
        now: iso(clock.now()),
        calls: await store.counts(),
      }),
    },
    { config: { controlPublic: true } },
  );
  // Another instance's advance is shown here at once, not when its change notice arrives.
  resource(app, `${base}/clock`, {
    GET: async () => {
      await clock.sync?.();
      return clockState();
    },
  });
  resource(app, `${base}/clock/advance`, {
    POST: async (req) => {
      const step = parseAdvance(req.body, clock.now());
      await clock.advance(step);
      // Whatever became due is ended before we answer, as if that time had really passed.
      await scheduler.runNow();
      await deps.operationScheduler?.runNow();
      return clockState();
    },
  });
  resource(app, `${base}/calls`, {
    GET: async (req: Req) => {
      const q = req.query;
      const state = q.state;
      if (state !== undefined && state !== 'active' && state !== 'ended') throw bad("'state' must be 'active' or 'ended'.");
      const top = q.$top === undefined ? 100 : Number(q.$top);
      if (!Number.isInteger(top) || top < 1 || top > 1000) throw bad("'$top' must be a whole number from 1 to 1000.");
      if (q.$skiptoken !== undefined && !/^[0-9a-z]{1,20}$/.test(q.$skiptoken))
        throw bad("'$skiptoken' is not a token this server issued.");
      const page = await store.list({
        limit: top,
        ...(state ? { state } : {}),
        ...(q.appId ? { appId: q.appId } : {}),
        ...(q.$skiptoken ? { after: q.$skiptoken } : {}),
      });
      const now = clock.now();
      const out: Record<string, unknown> = { value: page.calls.map((c) => describe(c, now)) };
      if (page.next) {
        const params = new URLSearchParams({
          ...(state ? { state } : {}),
          ...(q.appId ? { appId: q.appId } : {}),
          $top: String(top),
          $skiptoken: page.next,
        });
        out['@odata.nextLink'] = `${req.protocol}://${req.host}${base}/calls?${params}`;
      }
      return out;
    },
  });
  resource(app, `${base}/calls/:id`, {
    GET: async (req: Req) => {
      const call = await store.get(req.params.id);
      if (!call) throw graphErrors.callNotFound();
      return describe(call, clock.now());
    },
  });
  resource(app, `${base}/calls/:id/expire`, {
    POST: async (req: Req) => describe(await service.expireNow(req.params.id, causeOf(req)), clock.now()),
  });
  resource(app, `${base}/tokens/expire`, {
    POST: async (req) => {
      const appId = parseTokenExpiry(req.body, apps);
      const at = issuer.expireIssued(appId);
      return { appId: appId ?? null, expiredBeforeDateTime: new Date(at).toISOString() };
    },
  });
  resource(app, `${base}/apps`, {
    POST: async (req, reply) => {
      const registration = parseAppRegistration(req.body ?? {}, 'app');
      const added = await registerApp(store, apps, registration);
      if (added === 'exists') throw graphErrors.appExists({ clientId: registration.clientId });
      if (added === 'limit') throw graphErrors.tooManyApps({ limit: String(MAX_REGISTERED_APPS) });
      return reply.code(201).send(describeApp(registration, `${req.protocol}://${req.host}`));
    },
    GET: async (req) => {
      const origin = `${req.protocol}://${req.host}`;
      await apps.refresh();
      return { value: apps.list().map((a) => describeApp(a, origin)) };
    },
  });
}
