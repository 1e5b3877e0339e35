import type { FastifyInstance } from 'fastify';
import type { AppRegistry } from '../auth/apps.js';
import type { CallService } from '../calls/call-service.js';
import type { Clock } from '../clock/clock.js';
import { graphErrors } from '../errors/graph-errors.js';
import type { NotificationDispatcher } from '../notifications/dispatcher.js';
import { NOTIFICATION_ISSUER, type NotificationSigner } from '../notifications/notification-signer.js';
import { renderNotifications } from '../notifications/render.js';
import type { OutboxEntry, Store } from '../store/store.js';
import { causeOf } from './request-context.js';
import { resource } from './resource.js';
import { iso } from './wire.js';

export interface NotificationRouteDeps {
  service: CallService;
  store: Store;
  clock: Clock;
  apps: AppRegistry;
  notifier: NotificationDispatcher;
  notificationSigner: NotificationSigner;
}

const bad = (detail: string) => graphErrors.invalidControlRequest({ detail });
const STATUSES = new Set<OutboxEntry['status']>(['pending', 'delivered', 'dead']);

/**
 * Incoming calls and the other party's hang-up (control API), the delivery log, and the OpenID
 * document whose keys sign notifications (what a bot's token validator is pointed at).
 */
export function registerNotificationRoutes(app: FastifyInstance, deps: NotificationRouteDeps): void {
  const { service, store, clock, apps, notifier, notificationSigner } = deps;

  resource(app, '/_callkeeper/incoming-calls', {
    POST: async (req, reply) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const appId = typeof body.appId === 'string' ? body.appId : '';
      const registration = apps.find(appId);
      if (typeof body === 'object' && body !== null && !Array.isArray(body) && appId && !registration) {
        throw bad(`No app with client id '${appId.slice(0, 100)}' is registered.`);
      }
      const call = await service.ring(
        registration && body.tenantId === undefined ? { ...body, tenantId: registration.tenantId } : req.body,
        registration && { displayName: registration.displayName, callbackUri: registration.callbackUri },
        causeOf(req),
      );
      return reply.code(201).send({ id: call.id, state: call.state, direction: call.direction, answerByDateTime: iso(call.deadline) });
    },
  });
  resource(app, '/_callkeeper/calls/:id/hangup', {
    POST: async (req) => {
      const call = await service.remoteHangUp(req.params.id, causeOf(req));
      return { id: call.id, state: call.state, resultInfo: call.resultInfo };
    },
  });
  resource(app, '/_callkeeper/notifications', {
    GET: async (req) => {
      const q = req.query;
      const status = q.status as OutboxEntry['status'] | undefined;
      if (status !== undefined && !STATUSES.has(status)) throw bad("'status' must be pending, delivered or dead.");
      const top = q.$top === undefined ? 100 : Number(q.$top);
      if (!Number.isInteger(top) || top < 1 || top > 1000) throw bad("'$top' must be a whole number from 1 to 1000.");
      const entries = await store.listDeliveries({ limit: top, ...(q.callId ? { callId: q.callId } : {}), ...(status ? { status } : {}) });
      return {
        value: entries.map((e) => {
          const rendered = renderNotifications(e.fact);
          const last = rendered.at(-1);
          return {
            seq: e.seq,
            callId: e.callId,
            callbackUri: e.callbackUri,
            transition: e.fact.transition,
            changeType: last?.changeType,
            resourceUrl: `/communications/calls/${e.callId}${last?.resourcePath ?? ''}`,
            state: last?.resourceData.state,
            notifications: rendered.map((n) => ({ changeType: n.changeType, state: n.resourceData.state })),
            status: e.status,
            ...(e.deadReason ? { deadReason: e.deadReason } : {}),
            createdDateTime: iso(e.createdAt),
            nextAttemptDateTime: e.status === 'pending' ? iso(e.nextAttemptAt) : null,
            deliveredDateTime: iso(e.deliveredAt),
            attempts: e.attemptLog.map((a) => ({
              attempt: a.attempt,
              dateTime: iso(a.at),
              statusCode: a.statusCode,
              latencyMs: a.latencyMs,
              error: a.error,
              outcome: a.outcome,
            })),
          };
        }),
      };
    },
  });
  resource(app, '/_callkeeper/notifications/flush', {
    POST: async () => {
      await notifier.flush();
      return { now: iso(clock.now()) };
    },
  });

  const openid = async (req: { protocol: string; host: string }) => {
    const base = `${req.protocol}://${req.host}/botframework/v1`;
    return {
      issuer: NOTIFICATION_ISSUER,
      jwks_uri: `${base}/.well-known/keys`,
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_signing_alg_values_supported: ['RS256'],
    };
  };
  resource(app, '/botframework/v1/.well-known/openidconfiguration', { GET: openid });
  resource(app, '/botframework/v1/.well-known/openid-configuration', { GET: openid });
  resource(app, '/botframework/v1/.well-known/keys', { GET: async () => ({ keys: [(await notificationSigner.key()).publicJwk] }) });
}
