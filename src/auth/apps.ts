/** An app registration: what a tenant admin would create in Entra ID for a calling bot. */
export interface AppRegistration {
  displayName: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** Granted application permissions (app roles), e.g. Calls.Initiate.All. */
  roles: string[];
  /**
   * The bot's calling webhook ("global callback URI"): where incoming calls ring, and the
   * callback of an answer that names none (call-answer.md).
   */
  callbackUri?: string;
}

/** Every application permission of the calls API (https://learn.microsoft.com/graph/permissions-reference, Calls.*). */
export const CALLS_ROLES = [
  'Calls.Initiate.All',
  'Calls.InitiateGroupCall.All',
  'Calls.JoinGroupCall.All',
  'Calls.JoinGroupCallAsGuest.All',
  'Calls.AccessMedia.All',
] as const;

/**
 * The well-known development app, like the storage emulators' devstoreaccount1: fixed
 * credentials so scripts and samples work without configuration. Never a secret.
 */
export const DEFAULT_APP: AppRegistration = {
  displayName: 'callkeeper dev bot',
  tenantId: 'ca11ca11-0000-4000-8000-000000000001',
  clientId: 'ca11ca11-0000-4000-8000-00000000b075',
  clientSecret: 'callkeeper-dev-secret',
  roles: [...CALLS_ROLES],
};

/** Where apps added at run time are kept (the store's AppsPort). */
export interface AppSource {
  findApp(clientId: string): Promise<AppRegistration | undefined>;
  listApps(): Promise<AppRegistration[]>;
}

/**
 * The apps this server knows: those of its configuration, and those added at run time, which
 * live in the store (shared by every instance) and are cached here. The cache is refreshed by
 * the store's change feed; a clientId not in it is looked up in the store (ensure) before a
 * token is refused, so an app registered on one instance works at once on every other.
 */
export class AppRegistry {
  private readonly byClientId = new Map<string, AppRegistration>();

  constructor(
    apps: AppRegistration[] = [DEFAULT_APP],
    private readonly source?: AppSource,
  ) {
    for (const app of apps) this.add(app);
  }

  /** Client ids (lower case) the cache holds because the store has them. */
  private readonly fromStore = new Set<string>();

  /** Loads every app the store holds into the cache, and forgets those it no longer holds. */
  async refresh(): Promise<void> {
    if (!this.source) return;
    const stored = await this.source.listApps();
    const now = new Set(stored.map((a) => a.clientId.toLowerCase()));
    for (const id of this.fromStore) if (!now.has(id)) this.remove(id);
    this.fromStore.clear();
    for (const app of stored) {
      if (!this.has(app.clientId)) this.add(app);
      this.fromStore.add(app.clientId.toLowerCase());
    }
  }

  /** Makes sure `clientId` is in the cache if the store has it (one lookup, only on a miss). */
  async ensure(clientId: string): Promise<void> {
    if (!this.source || this.has(clientId) || clientId.length > 200) return;
    const app = await this.source.findApp(clientId);
    if (app && !this.has(app.clientId)) {
      this.add(app);
      this.fromStore.add(app.clientId.toLowerCase());
    }
  }

  add(app: AppRegistration): void {
    this.byClientId.set(app.clientId.toLowerCase(), app);
  }

  /** Forgets an app (the control API's reset with apps); true if it was there. */
  remove(clientId: string): boolean {
    return this.byClientId.delete(clientId.toLowerCase());
  }

  find(clientId: string): AppRegistration | undefined {
    return this.byClientId.get(clientId.toLowerCase());
  }

  hasTenant(tenantId: string): boolean {
    const t = tenantId.toLowerCase();
    for (const app of this.byClientId.values()) if (app.tenantId.toLowerCase() === t) return true;
    return false;
  }

  has(clientId: string): boolean {
    return this.byClientId.has(clientId.toLowerCase());
  }

  list(): AppRegistration[] {
    return [...this.byClientId.values()];
  }
}
