import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { aadErrors, sendAadError } from '../auth/aad-errors.js';
import type { AppRegistry } from '../auth/apps.js';
import { CLOUDS, type Cloud, graphScopesOf } from '../auth/clouds.js';
import type { SecretThrottle } from '../auth/secret-throttle.js';
import type { SigningKey } from '../auth/signing-key.js';
import type { TokenIssuer } from '../auth/token-issuer.js';
import type { Clock } from '../clock/clock.js';
import { type Req, resource } from './resource.js';

export interface AuthRouteDeps {
  /** Counts wrong client secrets and refuses guessers (429). */
  secretThrottle: SecretThrottle;
  apps: AppRegistry;
  issuer: TokenIssuer;
  key: SigningKey;
  clock: Clock;
}

/**
 * The login authority (like login.microsoftonline.com): the client-credentials token endpoint,
 * its OpenID discovery document and the JWKS with the signing key.
 */
/** Compares secrets in constant time (hashes of equal length). */
function secretMatches(sent: string | undefined, expected: string): boolean {
  if (sent === undefined) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(sent), digest(expected));
}

export function registerAuthRoutes(app: FastifyInstance, deps: AuthRouteDeps): void {
  for (const cloud of CLOUDS) registerAuthority(app, deps, cloud);
}

function registerAuthority(app: FastifyInstance, deps: AuthRouteDeps, cloud: Cloud): void {
  const { apps, issuer, key, clock, secretThrottle } = deps;
  const scopes = graphScopesOf(cloud);
  const prefix = cloud.prefix;

  const token = async (req: Req, reply: FastifyReply) => {
    const form = req.body;
    if (typeof form !== 'object' || form === null || Array.isArray(form)) {
      return sendAadError(reply, aadErrors.missingParameter({ parameter: 'grant_type' }), clock);
    }
    const f = form as Record<string, unknown>;
    const param = (name: string) => (typeof f[name] === 'string' ? (f[name] as string) : undefined);
    const grant = param('grant_type');
    if (!grant) return sendAadError(reply, aadErrors.missingParameter({ parameter: 'grant_type' }), clock);
    if (grant !== 'client_credentials') return sendAadError(reply, aadErrors.unsupportedGrantType({ grant: grant.slice(0, 100) }), clock);
    const clientId = param('client_id');
    if (!clientId) return sendAadError(reply, aadErrors.missingParameter({ parameter: 'client_id' }), clock);
    const scope = param('scope');
    if (!scope) return sendAadError(reply, aadErrors.missingParameter({ parameter: 'scope' }), clock);
    const tenant = req.params.tenant;
    // An app registered on another instance sharing the store is looked up there.
    await apps.ensure(clientId);
    if (!apps.hasTenant(tenant)) return sendAadError(reply, aadErrors.tenantNotFound({ tenant: tenant.slice(0, 100) }), clock);
    const registration = apps.find(clientId);
    if (!registration || registration.tenantId.toLowerCase() !== tenant.toLowerCase()) {
      return sendAadError(reply, aadErrors.unknownClient({ clientId: clientId.slice(0, 100), tenant: tenant.slice(0, 100) }), clock);
    }
    // Checked before the secret: a refused request tells a guesser nothing.
    const source = req.socket.remoteAddress ?? req.ip;
    const wait = secretThrottle.waitMs(registration.clientId, source);
    if (wait > 0) {
      const seconds = String(Math.max(1, Math.ceil(wait / 1000)));
      reply.header('retry-after', seconds);
      return sendAadError(reply, aadErrors.throttled({ seconds }), clock);
    }
    if (!secretMatches(param('client_secret'), registration.clientSecret)) {
      secretThrottle.failed(registration.clientId, source);
      return sendAadError(reply, aadErrors.invalidSecret({ clientId: registration.clientId }), clock);
    }
    if (!scopes.has(scope.trim())) return sendAadError(reply, aadErrors.invalidScope({ scope: scope.slice(0, 200) }), clock);
    return reply.header('cache-control', 'no-store, no-cache').send(await issuer.issue(registration, cloud));
  };

  const discovery = async (req: Req) => {
    const base = `${req.protocol}://${req.host}${prefix}`;
    const tenant = req.params.tenant;
    return {
      token_endpoint: `${base}/${tenant}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post'],
      jwks_uri: `${base}/${tenant}/discovery/v2.0/keys`,
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      issuer: `${base}/${tenant}/v2.0`,
      authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/authorize`,
      tenant_region_scope: 'WW',
      cloud_instance_name: req.host,
    };
  };

  const jwks = async () => ({ keys: [key.publicJwk] });

  resource(app, `${prefix}/:tenant/oauth2/v2.0/token`, { POST: token });
  resource(app, `${prefix}/:tenant/v2.0/.well-known/openid-configuration`, { GET: discovery });
  resource(app, `${prefix}/:tenant/discovery/v2.0/keys`, { GET: jwks });
  resource(app, `${prefix}/:tenant/discovery/keys`, { GET: jwks });
}
