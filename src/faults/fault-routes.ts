import type { FastifyInstance } from 'fastify';
import type { Clock } from '../clock/clock.js';
import { graphErrors } from '../errors/graph-errors.js';
import { type Req, resource } from '../http/resource.js';
import type { FaultStore } from '../store/fault-store.js';
import { describeFault, parseFaultRule } from './fault-rule.js';

export interface FaultRouteDeps {
  faults: FaultStore;
  clock: Clock;
}

/** Most rules at once: each Graph request looks at all of them. */
export const MAX_FAULT_RULES = 100;

/** Adds a validated rule, refusing past MAX_FAULT_RULES. */
export async function addFaultRule(faults: FaultStore, clock: Clock, body: unknown, id?: string) {
  const now = clock.now();
  const rule = parseFaultRule(body, now, id);
  if ((await faults.listFaults(now)).length >= MAX_FAULT_RULES)
    throw graphErrors.invalidControlRequest({ detail: `At most ${MAX_FAULT_RULES} fault rules can be active; delete some first.` });
  await faults.addFault(rule);
  return rule;
}

/** POST/GET/DELETE /_callkeeper/faults and DELETE /_callkeeper/faults/{id}. */
export function registerFaultRoutes(app: FastifyInstance, deps: FaultRouteDeps): void {
  const { faults, clock } = deps;
  const base = '/_callkeeper/faults';
  resource(app, base, {
    POST: async (req, reply) => reply.code(201).send(describeFault(await addFaultRule(faults, clock, req.body))),
    GET: async () => ({ value: (await faults.listFaults(clock.now())).map(describeFault) }),
    DELETE: async () => ({ deleted: await faults.clearFaults() }),
  });
  resource(app, `${base}/:id`, {
    DELETE: async (req: Req, reply) => {
      const r = await faults.removeFault(req.params.id);
      if (!r.ok) throw graphErrors.faultNotFound({ id: req.params.id.slice(0, 100) });
      return reply.code(204).send();
    },
  });
}
