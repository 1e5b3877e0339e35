import type { AppsPort } from '../store/apps-port.js';
import type { AppRegistration, AppRegistry } from './apps.js';

/** Most apps POST /_callkeeper/apps can register (issue 16: registrations are bounded). */
export const MAX_REGISTERED_APPS = 1_000;

/**
 * Registers an app added at run time (POST /_callkeeper/apps): one atomic add of one record in
 * the store (shared by every instance, surviving restarts), then the local cache.
 */
export async function registerApp(
  store: AppsPort,
  registry: AppRegistry,
  app: AppRegistration,
  maxApps = MAX_REGISTERED_APPS,
): Promise<'added' | 'exists' | 'limit'> {
  if (registry.has(app.clientId)) return 'exists';
  const result = await store.addApp(app, maxApps);
  if (!result.ok) return result.reason;
  registry.add(app);
  return 'added';
}

/** Forgets every app registered at run time, in the store and in this registry; returns their client ids. */
export async function unregisterApps(store: AppsPort, registry: AppRegistry): Promise<string[]> {
  const removed = await store.clearApps();
  for (const id of removed) registry.remove(id);
  return removed;
}
