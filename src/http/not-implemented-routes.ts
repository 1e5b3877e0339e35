import type { FastifyInstance } from 'fastify';
import type { Cloud } from '../auth/clouds.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import { graphRoots } from './graph-routes.js';
import { resource } from './resource.js';
import { isResource } from './wrong-method.js';

type Method = 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';

/** A documented route callkeeper does not serve yet. */
export interface NotImplementedRoute {
  method: Method;
  /**
   * Relative to `/communications/calls`, in Fastify's syntax with the parameter names the
   * implemented routes use (`:id` the call, `:pid` a participant, `:opId` an operation).
   */
  path: string;
  /** An OData action: served under its plain and its namespace-qualified (`microsoft.graph.`) name. */
  action?: boolean;
}

/**
 * Every route of Graph's calls API (CloudCommunications.v1.0.yml, /communications/calls...)
 * that callkeeper does not implement. Each answers 501 NotImplemented naming it, after the
 * token check, instead of `400 Resource not found for the segment`, which would tell the
 * developer their URL is wrong. Implementing one = removing its entry here (a test enumerates
 * the OpenAPI paths and fails if a route is neither served nor listed, or listed but served).
 */
export const NOT_IMPLEMENTED: readonly NotImplementedRoute[] = [
  { method: 'GET', path: '' },
  { method: 'GET', path: '$count' },
  { method: 'POST', path: 'logTeleconferenceDeviceQuality', action: true },
  { method: 'PATCH', path: ':id' },
  { method: 'POST', path: ':id/addLargeGalleryView', action: true },
  { method: 'GET', path: ':id/audioRoutingGroups' },
  { method: 'POST', path: ':id/audioRoutingGroups' },
  { method: 'GET', path: ':id/audioRoutingGroups/$count' },
  { method: 'GET', path: ':id/audioRoutingGroups/:gid' },
  { method: 'PATCH', path: ':id/audioRoutingGroups/:gid' },
  { method: 'DELETE', path: ':id/audioRoutingGroups/:gid' },
  { method: 'GET', path: ':id/contentSharingSessions' },
  { method: 'POST', path: ':id/contentSharingSessions' },
  { method: 'GET', path: ':id/contentSharingSessions/$count' },
  { method: 'GET', path: ':id/contentSharingSessions/:sid' },
  { method: 'PATCH', path: ':id/contentSharingSessions/:sid' },
  { method: 'DELETE', path: ':id/contentSharingSessions/:sid' },
  { method: 'POST', path: ':id/operations' },
  { method: 'PATCH', path: ':id/operations/:opId' },
  { method: 'DELETE', path: ':id/operations/:opId' },
  { method: 'POST', path: ':id/participants' },
  { method: 'PATCH', path: ':id/participants/:pid' },
  { method: 'POST', path: ':id/participants/:pid/startHoldMusic', action: true },
  { method: 'POST', path: ':id/participants/:pid/stopHoldMusic', action: true },
];

const CALLS = '/communications/calls';
/** Parameter names do not matter for matching. */
const shape = (path: string) => path.replace(/:\w+/g, ':');

/** The paths (relative to /communications/calls, both names of actions) of the list. */
function expanded(): { method: Method; path: string; name: string }[] {
  return NOT_IMPLEMENTED.flatMap((r) => {
    const cut = r.path.lastIndexOf('/');
    const last = r.path.slice(cut + 1);
    const name = r.action ? last : `${r.method} /communications/calls${r.path ? `/${r.path.replace(/:\w+/g, '{id}')}` : ''}`;
    const paths = r.action ? [r.path, `${r.path.slice(0, cut + 1)}microsoft.graph.${last}`] : [r.path];
    return paths.map((path) => ({ method: r.method, path, name: r.action ? `the action '${name}'` : `'${name}'` }));
  });
}
const BY_SHAPE = new Map<string, Map<Method, string>>();
for (const r of expanded()) {
  const key = shape(r.path);
  const methods = BY_SHAPE.get(key) ?? new Map<Method, string>();
  methods.set(r.method, r.name);
  BY_SHAPE.set(key, methods);
}

/**
 * The methods of a Fastify route URL that are documented but not implemented, with what to
 * call them in the error. `resource()` answers those 501 instead of 405.
 */
export function notImplementedMethods(url: string): ReadonlyMap<Method, string> | undefined {
  const at = url.indexOf(CALLS);
  if (at < 0) return undefined;
  const rest = url.slice(at + CALLS.length);
  if (rest !== '' && !rest.startsWith('/')) return undefined;
  return BY_SHAPE.get(shape(rest.slice(1)));
}

/**
 * Adds the listed paths to a tree of known segments (`'*'` for a parameter), whose root is
 * `/communications/calls`, so a URL below one of them is not reported as a wrong segment there.
 */
export function addNotImplementedSegments(calls: Record<string, unknown>): void {
  for (const { path } of expanded()) {
    let node = calls;
    for (const seg of path.split('/').filter(Boolean)) {
      const key = seg.startsWith(':') ? '*' : seg;
      node[key] ??= {};
      node = node[key] as Record<string, unknown>;
    }
  }
}

export interface NotImplementedRouteDeps {
  verifiers: ReadonlyMap<Cloud['name'], TokenVerifier>;
}

/**
 * Registers the listed paths nobody serves at all; on paths that are served for other methods,
 * `resource()` answers the listed methods itself. Must run after every Graph route is registered.
 */
export function registerNotImplementedRoutes(app: FastifyInstance, deps: NotImplementedRouteDeps): void {
  const paths = [...new Set(expanded().map((r) => r.path))];
  for (const { root, opts } of graphRoots(deps.verifiers)) {
    for (const path of paths) {
      const url = `${root}${CALLS}${path ? `/${path}` : ''}`;
      if (isResource(app, url)) continue;
      resource(app, url, {}, opts);
    }
  }
}
