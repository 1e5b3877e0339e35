import type { FastifyInstance } from 'fastify';
import { unregisterApps } from '../auth/app-store.js';
import type { AppRegistry } from '../auth/apps.js';
import { graphErrors } from '../errors/graph-errors.js';
import type { RequestJournal } from '../journal/request-journal.js';
import type { BotActionStore } from '../store/bot-action-store.js';
import type { CallStore } from '../store/call-store.js';
import type { FaultStore } from '../store/fault-store.js';
import type { ThrottleStore } from '../store/throttle-store.js';
import { resource } from './resource.js';

export interface ResetDeps {
  store: CallStore;
  /** Rosters and operations: they go with their calls. */
  botActionStore: BotActionStore;
  faults: FaultStore;
  throttleStore: ThrottleStore;
  journal: RequestJournal;
  apps: AppRegistry;
}

/**
 * POST /_callkeeper/reset: every call, notification, fault rule, throttle count and journal
 * entry gone, as LocalStack's reset does; apps registered at run time (and the signing keys)
 * stay unless {"apps": true}.
 */
export function registerResetRoutes(app: FastifyInstance, deps: ResetDeps): void {
  resource(app, '/_callkeeper/reset', {
    POST: async (req) => {
      const body = req.body ?? {};
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw graphErrors.invalidControlRequest({ detail: 'Send no body, {} or {"apps": true}.' });
      const extra = Object.keys(body).filter((k) => k !== 'apps');
      const apps = (body as { apps?: unknown }).apps;
      if (extra.length || (apps !== undefined && typeof apps !== 'boolean'))
        throw graphErrors.invalidControlRequest({ detail: "The only property is 'apps' (true or false)." });
      // Rosters and operations go with their calls (BotActionStore: they follow the call store's purges).
      await deps.store.resetCalls();
      const faults = await deps.faults.clearFaults();
      await deps.throttleStore.clearThrottle();
      await deps.journal.clear();
      const removedApps = apps === true ? await unregisterApps(deps.store, deps.apps) : [];
      return { reset: true, faultsDeleted: faults, appsRemoved: removedApps };
    },
  });
}
