import { Agent, type Dispatcher, request } from 'undici';

/** One HTTP request as the keeper makes it. */
export interface HttpRequest {
  method: 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/** The parts of an answer the keeper reads; the body is read whole (it is empty or a small error). */
export interface HttpResponse {
  status: number;
  header(name: string): string | undefined;
  body: string;
}

/** Sends one request. Rejects only when no HTTP answer came (network error, timeout, abort). */
export type HttpSend = (req: HttpRequest) => Promise<HttpResponse>;

/**
 * The subset of the WHATWG `fetch` the keeper needs: global fetch, undici's fetch or a wrapper
 * (a proxy, instrumentation) all fit.
 */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal },
) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>;

/** Sends through undici's request API: about three times cheaper per request than fetch. */
export function undiciSend(dispatcher: Dispatcher, timeoutMs: number): HttpSend {
  return async (req) => {
    const res = await request(req.url, {
      method: req.method,
      headers: req.headers,
      ...(req.body === undefined ? {} : { body: req.body }),
      ...(req.signal ? { signal: req.signal } : {}),
      dispatcher,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const body = await res.body.text();
    const headers = res.headers;
    return {
      status: res.statusCode,
      header: (name) => {
        const v = headers[name.toLowerCase()];
        return Array.isArray(v) ? v[0] : v;
      },
      body,
    };
  };
}

/** Sends through a fetch function. The timeout is wall-clock time, like any network timeout. */
export function fetchSend(fetchFn: FetchLike, timeoutMs: number): HttpSend {
  return async (req) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const res = await fetchFn(req.url, {
      method: req.method,
      headers: req.headers,
      ...(req.body === undefined ? {} : { body: req.body }),
      signal: req.signal ? AbortSignal.any([req.signal, timeout]) : timeout,
    });
    const body = await res.text();
    return { status: res.status, header: (name) => res.headers.get(name) ?? undefined, body };
  };
}

/** A connection pool of the keeper's own, sized to its concurrency; the keeper closes it. */
export function ownAgent(connections: number): Agent {
  return new Agent({ connections, keepAliveTimeout: 30_000 });
}
