import type { CallStore } from '../store/call-store.js';
import type { AppRegistration, AppRegistry } from './apps.js';

const KEY = 'registered-apps';

/**
 * Apps added at run time (POST /_callkeeper/apps) are kept in the store, so they survive a
 * restart and other instances sharing the store load them when they start.
 */
export async function loadRegisteredApps(store: CallStore, registry: AppRegistry): Promise<void> {
  const apps = JSON.parse(await store.getOrInitSetting(KEY, '[]')) as AppRegistration[];
  for (const app of apps) if (!registry.has(app.clientId)) registry.add(app);
}

export async function registerApp(store: CallStore, registry: AppRegistry, app: AppRegistration): Promise<void> {
  const saved = JSON.parse(await store.getOrInitSetting(KEY, '[]')) as AppRegistration[];
  await store.putSetting(KEY, JSON.stringify([...saved.filter((a) => a.clientId !== app.clientId), app]));
  registry.add(app);
}

/** Forgets every app registered at run time, in the store and in this registry; returns their client ids. */
export async function unregisterApps(store: CallStore, registry: AppRegistry): Promise<string[]> {
  const saved = JSON.parse(await store.getOrInitSetting(KEY, '[]')) as AppRegistration[];
  await store.putSetting(KEY, '[]');
  for (const app of saved) registry.remove(app.clientId);
  return saved.map((a) => a.clientId);
}
