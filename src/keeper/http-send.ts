import { Agent, type Dispatcher } from 'undici';

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

/**
 * Sends through undici's dispatcher API with a handler of its own: no response stream, no
 * promise per stage, headers parsed only when asked for. At 100,000 calls that is most of what
 * `request()` costs per keepAlive besides the socket write (docs/benchmarks.md, the keeper row).
 */
export function undiciSend(dispatcher: Dispatcher, timeoutMs: number): HttpSend {
  return (req) =>
    new Promise<HttpResponse>((resolve, reject) => {
      const { signal } = req;
      if (signal?.aborted) {
        reject(signal.reason ?? new Error('aborted'));
        return;
      }
      const split = originOf(req.url);
      let status = 0;
      let raw: Buffer[] = [];
      let chunks: Buffer[] | undefined;
      let abort: ((err?: Error) => void) | undefined;
      let failed: Error | undefined;
      const onAbort = () => {
        failed = signal?.reason ?? new Error('aborted');
        abort?.(failed);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const handler: Dispatcher.DispatchHandler = {
        onConnect(a) {
          abort = a;
          if (failed) a(failed);
        },
        onHeaders(statusCode, rawHeaders) {
          if (statusCode < 200) return true;
          status = statusCode;
          raw = rawHeaders;
          return true;
        },
        onData(chunk) {
          if (chunks) chunks.push(chunk);
          else chunks = [chunk];
          return true;
        },
        onComplete() {
          signal?.removeEventListener('abort', onAbort);
          const headers = raw;
          let parsed: Map<string, string> | undefined;
          resolve({
            status,
            header: (name) => {
              parsed ??= parseRaw(headers);
              return parsed.get(name.toLowerCase());
            },
            body: chunks === undefined ? '' : Buffer.concat(chunks).toString('utf8'),
          });
        },
        onError(err) {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      dispatcher.dispatch(
        {
          origin: split.origin,
          path: split.path,
          method: req.method,
          headers: req.headers,
          ...(req.body === undefined ? {} : { body: req.body }),
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        },
        handler,
      );
    });
}

/** `http://host:port/a/b` as origin and path, without a URL object per request. */
function originOf(url: string): { origin: string; path: string } {
  const scheme = url.indexOf('://');
  const slash = scheme < 0 ? -1 : url.indexOf('/', scheme + 3);
  if (slash < 0) return { origin: url, path: '/' };
  return { origin: url.slice(0, slash), path: url.slice(slash) };
}

/** Raw header pairs as undici hands them over; the first value of a repeated header wins. */
function parseRaw(raw: Buffer[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1').toLowerCase();
    if (!out.has(name)) out.set(name, (raw[i + 1] as Buffer).toString('utf8'));
  }
  return out;
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
