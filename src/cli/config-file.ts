import { KNOWN_ROLES, parseAppRegistration } from '../auth/app-config.js';
import type { AppRegistration } from '../auth/apps.js';
import { CliError } from './options.js';

/** The "apps" key of the config file: app registrations, as POST /_callkeeper/apps takes them. */
export function configApps(file: { path: string; extra: Record<string, unknown> } | undefined): AppRegistration[] {
  if (!file || file.extra.apps === undefined) return [];
  const apps = file.extra.apps;
  if (!Array.isArray(apps)) throw new CliError(`--config ${file.path}: "apps" must be an array of app registrations`);
  return apps.map((a, i) => {
    try {
      return parseAppRegistration(a, `apps[${i}]`);
    } catch (err) {
      throw new CliError(`--config ${file.path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
}

/** JSON schema of the "apps" key. */
export const APPS_SCHEMA = {
  type: 'array',
  description: 'app registrations (the default app is always there); ids and secret are generated when omitted',
  items: {
    type: 'object',
    additionalProperties: false,
    properties: {
      displayName: { type: 'string' },
      tenantId: { type: 'string', format: 'uuid' },
      clientId: { type: 'string', format: 'uuid' },
      clientSecret: { type: 'string', minLength: 8 },
      roles: { type: 'array', items: { enum: [...KNOWN_ROLES] } },
    },
  },
};
