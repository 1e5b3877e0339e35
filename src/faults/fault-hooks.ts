import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import '../http/traffic-context.js';
import { faultError, wallDelay } from './fault-effects.js';
import type { FaultInjector } from './fault-injector.js';
import { graphPathOfRequest } from './graph-path.js';
import type { Throttle } from './throttle.js';

export interface FaultHookDeps {
  injector: FaultInjector;
  throttle: Throttle | undefined;
  /** Records a request whose connection is about to be cut (status null). */
  recordCut(req: FastifyRequest, latencyMs: number): void;
}

/**
 * Applies throttling and fault rules to authenticated Graph requests, after the token is
 * verified (so rules can match the app) and before the handler runs (so a faulted request
 * changes nothing, as a Graph front end that refused it would).
 */
export function registerFaultHooks(app: FastifyInstance, deps: FaultHookDeps): void {
  const { injector, throttle } = deps;
  // Callback-style: a request with no throttle and no rule armed (the common case) goes on at
  // once, without a promise and a microtask turn.
  app.addHook('preHandler', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    if (!req.principal || (!throttle && injector.idle('graph'))) {
      done();
      return;
    }
    // A hook that answered or cut the connection still calls done: Fastify goes no further once
    // the reply is sent or hijacked.
    apply(req, reply).then(() => done(), done);
  });

  const apply = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const principal = req.principal;
    if (!principal) return;
    const path = graphPathOfRequest(req);
    if (path === undefined) return;
    if (throttle) {
      const limited = await throttle.check(principal.appId, principal.tenantId);
      if (limited) {
        req.fault = 'throttle';
        throw limited;
      }
    }
    const params = req.params as { id?: unknown } | undefined;
    const rule = await injector.pick('graph', {
      method: req.method,
      path,
      appId: principal.appId,
      callId: typeof params?.id === 'string' ? params.id : null,
    });
    if (!rule) return;
    req.fault = rule.id;
    const { effect } = rule;
    if (effect.latencyMs) await wallDelay(effect.latencyMs);
    if (effect.reset) {
      deps.recordCut(req, reply.elapsedTime);
      reply.hijack();
      req.raw.socket.destroy();
      return;
    }
    if (effect.status !== undefined) throw faultError(effect.status, effect.retryAfter);
  };
}
