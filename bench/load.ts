import { createRequire } from 'node:module';

/** The part of autocannon's request description the benchmarks use. */
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  setupRequest?: (req: AutocannonRequest) => AutocannonRequest;
}

interface AutocannonOptions {
  url: string;
  connections: number;
  pipelining: number;
  duration: number;
  timeout: number;
  requests: AutocannonRequest[];
  tlsOptions?: { rejectUnauthorized: boolean };
}

interface AutocannonResult {
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Seconds the run lasted. */
  duration: number;
  latency: { p50: number; p99: number; average: number };
}

type Autocannon = (opts: AutocannonOptions) => Promise<AutocannonResult>;

// autocannon is CommonJS without bundled types; this typed view covers what is used here.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface LoadSpec {
  /** Origin, e.g. http://127.0.0.1:1234 */
  origin: string;
  /** The path of the i-th request (rotating over a pool of call ids). */
  pathFor: () => string;
  headers: Record<string, string>;
  seconds: number;
  connections?: number;
}

export interface LoadResult {
  /** Successful (2xx) responses per second. */
  rps: number;
  ok: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
}

/** Closed-loop keepAlive load at full speed: how many requests per second a target answers. */
export async function keepAliveLoad(spec: LoadSpec): Promise<LoadResult> {
  const r = await autocannon({
    url: spec.origin,
    connections: spec.connections ?? 32,
    pipelining: 1,
    duration: spec.seconds,
    timeout: 10,
    tlsOptions: { rejectUnauthorized: false },
    requests: [{ method: 'POST', headers: spec.headers, setupRequest: (req) => ({ ...req, path: spec.pathFor() }) }],
  });
  return {
    rps: r['2xx'] / r.duration,
    ok: r['2xx'],
    failed: r.non2xx + r.errors + r.timeouts,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
  };
}

/** keepAlive paths over a pool of call ids, picked at random. */
export function randomPaths(ids: readonly string[]): () => string {
  if (ids.length === 0) throw new Error('empty id pool');
  return () => `/v1.0/communications/calls/${ids[Math.floor(Math.random() * ids.length)]}/keepAlive`;
}
