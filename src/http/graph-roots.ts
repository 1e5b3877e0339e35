import type { FastifyRequest } from 'fastify';
import { CLOUDS, type Cloud } from '../auth/clouds.js';
import { wrongMethodRoute } from './wrong-method.js';

/** The Graph versions callkeeper serves; both behave alike for calls. */
export const GRAPH_VERSIONS = ['v1.0', 'beta'] as const;

const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const oneOf = (values: readonly string[]) => values.map((v) => `^${literal(v)}$`).join('|');

/**
 * The route pattern of a Graph root: the version (and, for a national cloud, its prefix) is a
 * route parameter that matches only what callkeeper serves, so each Graph path is registered
 * once for the global root and once for the prefixed clouds instead of once per cloud and
 * version (docs/architecture.md). A URL with any other prefix or version
 * matches no route and gets the not-found answer, exactly as when each root was registered.
 */
export function graphRootPattern(clouds: readonly Cloud[]): string {
  const version = `:version(${oneOf(GRAPH_VERSIONS)})`;
  if (clouds.length === 0) return `/${version}`;
  return `/:cloud(${oneOf(clouds.map((c) => c.prefix.slice(1)))})/${version}`;
}

/** The clouds whose Graph has the calls API, behind a prefix (all but the global one and China). */
export const PREFIXED_CALL_CLOUDS: readonly Cloud[] = CLOUDS.filter((c) => c.callsAvailable && c.prefix !== '');

const GLOBAL_ROOT = graphRootPattern([]);
const PREFIXED_ROOT = graphRootPattern(PREFIXED_CALL_CLOUDS);

/**
 * What /metrics calls each root of a Graph route pattern: the concrete root the client used
 * (`/usgov/beta/communications/calls/:id`), as it was when each root had routes of its own.
 * Keyed by `cloud/version` params (`/v1.0` for the global root). Undefined for other routes.
 */
export function graphRouteLabels(url: string): Readonly<Record<string, string>> | undefined {
  const clouds = url.startsWith(`${PREFIXED_ROOT}/`) ? PREFIXED_CALL_CLOUDS : url.startsWith(`${GLOBAL_ROOT}/`) ? [] : undefined;
  if (!clouds) return undefined;
  const rest = url.slice((clouds.length ? PREFIXED_ROOT : GLOBAL_ROOT).length);
  const labels: Record<string, string> = {};
  for (const version of GRAPH_VERSIONS) {
    if (clouds.length === 0) labels[`/${version}`] = `/${version}${rest}`;
    for (const c of clouds) labels[`${c.prefix.slice(1)}/${version}`] = `${c.prefix}/${version}${rest}`;
  }
  return labels;
}

/** The route a request matched as /metrics names it: its pattern, with a Graph root as the client wrote it. */
export function routeLabel(req: FastifyRequest): string {
  // A wrong method is labelled with the path it was answered 405 for, as a route of its own was.
  const wrong = req.routeOptions.url === undefined ? wrongMethodRoute(req) : undefined;
  const url = req.routeOptions.url ?? wrong?.url;
  if (url === undefined) return 'unmatched';
  const labels = wrong ? wrong.graphLabels : (req.routeOptions.config as { graphLabels?: Record<string, string> }).graphLabels;
  if (labels === undefined) return url;
  const p = req.params as { cloud?: string; version?: string };
  return labels[`${p.cloud ?? ''}/${p.version}`] ?? url;
}
