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

/** Every application permission of the calls API (FACTS.md §1, §5). */
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

export class AppRegistry {
  private readonly byClientId = new Map<string, AppRegistration>();

  constructor(apps: AppRegistration[] = [DEFAULT_APP]) {
    for (const app of apps) this.add(app);
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
