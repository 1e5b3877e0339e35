import type { AppRegistration } from '../auth/apps.js';

export type AddAppResult = { ok: true } | { ok: false; reason: 'exists' | 'limit' };

/** App registrations added at run time (POST /_callkeeper/apps): one record per app. */
export interface AppsPort {
  /**
   * Adds one app in one atomic step costing the same whatever the number of apps: `exists`
   * if its clientId (case-insensitive) is taken, `limit` if `maxApps` are registered already.
   * Of concurrent adds of one clientId exactly one wins; adds of different ones never lose each other.
   */
  addApp(app: AppRegistration, maxApps: number): Promise<AddAppResult>;

  /** The app registered under `clientId` (case-insensitive), if any. */
  findApp(clientId: string): Promise<AppRegistration | undefined>;

  /** Every registered app, in the order they were added. */
  listApps(): Promise<AppRegistration[]>;

  /** Removes every app registered at run time (the control API's reset); returns their client ids. */
  clearApps(): Promise<string[]>;
}
