import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler, onRequestHookHandler } from 'fastify';
import FindMyWay from 'find-my-way';
import { type GraphError, graphErrors } from '../errors/graph-errors.js';
import { isControlPath } from './control-guard.js';

export type Method = 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';
export const METHODS: readonly Method[] = ['GET', 'POST', 'DELETE', 'PUT', 'PATCH'];

/**
 * The router options of the app and of the wrong-method table alike: a URL matches a path in
 * the table exactly when it would match the path's routes.
 */
export const ROUTER_OPTIONS = {
  // Ids of any length reach the handler and get Graph's 404, not a router miss.
  maxParamLength: 4096,
  ignoreTrailingSlash: true,
  // Fastify's defaults, spelled out for the table's own router.
  caseSensitive: true,
  ignoreDuplicateSlashes: false,
  useSemicolonDelimiter: false,
} as const;

/** What a path answers to a method it has no route for. */
interface WrongMethodEntry {
  /** The Fastify route URL, for /metrics (graph-roots.ts routeLabel). */
  url: string;
  graphLabels: Record<string, string> | undefined;
  /** The `Allow` header: the path's methods, and HEAD with GET. */
  allow: string;
  /** Under /_callkeeper: the control guard runs first, as on the path's routes. */
  control: boolean;
}

/** A path resource() registered: the methods it has routes for, and what the others answer. */
interface ResourcePath {
  url: string;
  segments: Segment[];
  routed: ReadonlySet<Method>;
  wrong: Method[];
  entry: WrongMethodEntry;
}

/** A segment of a route URL: a literal, or a parameter (with its regex, if it has one). */
type Segment = { literal: string } | { param: RegExp | undefined; alternatives: string[] | undefined };

function segmentsOf(url: string): Segment[] {
  return url
    .split('/')
    .slice(1)
    .map((seg) => {
      if (!seg.startsWith(':')) return { literal: seg };
      const open = seg.indexOf('(');
      if (open < 0) return { param: undefined, alternatives: undefined };
      const source = seg.slice(open + 1, seg.lastIndexOf(')'));
      // The roots' regexes are alternatives of literals (graph-roots.ts oneOf): ^v1\.0$|^beta$.
      const alternatives = /^(\^[\w\\.-]+\$\|?)+$/.test(source)
        ? source.split('|').map((a) => a.slice(1, -1).replace(/\\/g, ''))
        : undefined;
      return { param: new RegExp(source), alternatives };
    });
}

/** Whether some URL could match both segments (a parameter without a regex matches any). */
function mayOverlap(a: Segment, b: Segment): boolean {
  if ('literal' in a && 'literal' in b) return a.literal === b.literal;
  if ('literal' in a) return !('param' in b) || b.param === undefined || b.param.test(a.literal);
  if ('literal' in b) return a.param === undefined || a.param.test(b.literal);
  const [x, y] = [a, b];
  if (x.alternatives && y.param) return x.alternatives.some((v) => y.param?.test(v));
  if (y.alternatives && x.param) return y.alternatives.some((v) => x.param?.test(v));
  return true;
}

/** The route a wrong-method request was answered for, as routeLabel names it. */
export interface WrongMethodRoute {
  url: string;
  graphLabels: Record<string, string> | undefined;
}

const MAX_PARAM_LENGTH = Symbol('maxParamLength');

/**
 * The methods a path has no route for, answered 405 from the app's not-found handler: one
 * entry per path in a router of its own, instead of a Fastify route per method and path. Those
 * routes were four fifths of the app's routes, and registering routes three quarters of the
 * time it takes to build the app (docs/benchmarks.md, seventh round). The answer is the same,
 * at the same point: the app's hooks, then (under /_callkeeper) the control guard, then 405.
 */
class WrongMethodTable {
  readonly #router = FindMyWay({
    ...ROUTER_OPTIONS,
    // As the app's router answers a parameter over maxParamLength: 400, not a 404.
    onMaxParamLength: () => undefined,
  });
  readonly #paths = new Map<string, ResourcePath>();

  add(path: ResourcePath): void {
    this.#paths.set(path.url, path);
    if (path.wrong.length > 0) this.#router.on('GET', path.url, () => undefined, path.entry);
  }

  has(url: string): boolean {
    return this.#paths.has(url);
  }

  find(url: string): { entry: WrongMethodEntry; params: Record<string, string | undefined> } | typeof MAX_PARAM_LENGTH | undefined {
    try {
      const found = this.#router.find('GET', url);
      if (!found) return undefined;
      if (found.store === undefined || found.store === null) return MAX_PARAM_LENGTH;
      return { entry: found.store as WrongMethodEntry, params: found.params };
    } catch {
      // A URL the app's router could not decode either: that was answered before any hook.
      return undefined;
    }
  }

  /**
   * The (path, method) pairs the not-found handler would never see: a route of another path
   * with that method matches some of the path's URLs (`GET /calls/$count` would be `GET
   * /calls/:id`). Those keep a route of their own, so that a literal segment still wins over
   * a parameter, as in the router.
   */
  shadowed(): { path: ResourcePath; methods: Method[] }[] {
    const bySize = new Map<number, ResourcePath[]>();
    for (const p of this.#paths.values()) {
      const list = bySize.get(p.segments.length) ?? [];
      list.push(p);
      bySize.set(p.segments.length, list);
    }
    const rivals = new Map<ResourcePath, ResourcePath[]>();
    for (const p of this.#paths.values()) {
      if (p.wrong.length === 0) continue;
      const same = bySize.get(p.segments.length) ?? [];
      rivals.set(
        p,
        same.filter((q) => q !== p && q.segments.every((seg, i) => mayOverlap(seg, p.segments[i] as Segment))),
      );
    }
    // A 405 route added for one path is a route like any other to its rivals: until none is added.
    const routed = new Map([...this.#paths.values()].map((p) => [p, new Set(p.routed)]));
    const added = new Map<ResourcePath, Method[]>();
    for (let changed = true; changed; ) {
      changed = false;
      for (const [p, qs] of rivals) {
        const own = routed.get(p) as Set<Method>;
        for (const m of p.wrong) {
          if (own.has(m) || !qs.some((q) => routed.get(q)?.has(m))) continue;
          own.add(m);
          added.set(p, [...(added.get(p) ?? []), m]);
          changed = true;
        }
      }
    }
    return [...added].map(([path, methods]) => ({ path, methods }));
  }
}

const tables = new WeakMap<FastifyInstance, WrongMethodTable>();
function tableOf(app: FastifyInstance): WrongMethodTable {
  let table = tables.get(app);
  if (!table) {
    table = new WrongMethodTable();
    tables.set(app, table);
  }
  return table;
}

/** Records a path resource() registered: the methods it has routes for, and its `Allow`. */
export function addResource(
  app: FastifyInstance,
  url: string,
  routed: readonly Method[],
  allow: string,
  graphLabels: Record<string, string> | undefined,
): void {
  const full = `${app.prefix}${url}`;
  tableOf(app).add({
    url: full,
    segments: segmentsOf(full),
    routed: new Set(routed),
    wrong: METHODS.filter((m) => !routed.includes(m)),
    entry: { url: full, graphLabels, allow, control: isControlPath(full) },
  });
}

/** Whether resource() registered the path (not-implemented-routes.ts fills in the others). */
export function isResource(app: FastifyInstance, url: string): boolean {
  return tableOf(app).has(`${app.prefix}${url}`);
}

/**
 * After every resource: the wrong methods another path's route would catch get a 405 route of
 * their own (WrongMethodTable.shadowed).
 */
export function registerShadowedWrongMethods(app: FastifyInstance): void {
  for (const { path, methods } of tableOf(app).shadowed()) {
    const { allow, graphLabels } = path.entry;
    const config: Record<string, unknown> = graphLabels ? { graphLabels } : {};
    app.route({
      method: methods,
      url: path.url,
      config,
      handler: async (req) => {
        throw methodNotAllowed(req.method, allow);
      },
    });
  }
}

const matched = new WeakMap<FastifyRequest, WrongMethodEntry>();
/** The path a request was answered 405 for, if it was. */
export function wrongMethodRoute(req: FastifyRequest): WrongMethodRoute | undefined {
  return matched.get(req);
}

/** HEAD is served as GET (Fastify's HEAD route of the GET it belongs to). */
const isGraphMethod = (method: string): boolean => method === 'HEAD' || (METHODS as readonly string[]).includes(method);

/**
 * The app's last onRequest hook, where a route's own hooks would run: for a request no route
 * matched whose URL is a served path, takes the path's parameters and runs the control guard
 * (under /_callkeeper), as the path's routes do before their handlers.
 */
export function wrongMethodHook(app: FastifyInstance, guard: onRequestAsyncHookHandler): onRequestHookHandler {
  const table = tableOf(app);
  return (req, reply, done) => {
    if (req.routeOptions.url !== undefined || !isGraphMethod(req.method)) return done();
    const hit = table.find(req.url);
    if (!hit) return done();
    if (hit === MAX_PARAM_LENGTH) return done(graphErrors.invalidRequest({ detail: `'${req.url}' is exceeding the max param length` }));
    matched.set(req, hit.entry);
    req.params = hit.params;
    if (!hit.entry.control) return done();
    guard.call(app, req, reply).then(() => done(), done);
  };
}

/** From the not-found handler: the 405 of a request wrongMethodHook matched, or undefined. */
export function wrongMethodError(req: FastifyRequest): GraphError | undefined {
  const entry = matched.get(req);
  return entry ? methodNotAllowed(req.method, entry.allow) : undefined;
}

/**
 * A path whose every method is documented but not implemented (GET /calls/$count answers 501)
 * has an empty Allow (RFC 9110: none supported); the message says so instead of "allowed: .".
 */
function methodNotAllowed(method: string, allow: string): GraphError {
  return graphErrors.methodNotAllowed({ method, allowed: allow || 'none' });
}
