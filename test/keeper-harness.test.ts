/**
 * Shared rig for the keeper tests: a real callkeeper server and the keeper on one ManualClock,
 * and a small HTTP proxy that can answer faults for a stretch of virtual time. (Lives in a
 * .test.ts file so it stays within the keeper's files; its own checks are at the bottom.)
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Agent, request } from 'undici';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { ManualClock, type Timer } from '../src/clock/clock.js';
import { clientCredentials } from '../src/keeper/client-credentials.js';
import type { KeepAlive } from '../src/keeper/keep-alive.js';
import type { TokenCredentialLike } from '../src/keeper/token-source.js';
import { type Callkeeper, createCallkeeper } from '../src/server.js';
import { workerBoot } from './paths.js';
import { suiteKeys } from './suite-keys.js';

export const CALL_BODY = {
  callbackUri: 'https://127.0.0.1:4/cb',
  requestedModalities: ['audio'],
  mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
  targets: [{ identity: { user: { id: 'u1' } } }],
};

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

/**
 * A ManualClock that can say when its next timer is due, so the rig can skip the steps in which
 * nothing would happen (most of them, in a test with a handful of calls).
 */
export class SteppingClock extends ManualClock {
  private readonly live = new Set<{ at: number }>();

  override setTimer(at: number, fn: () => void): Timer {
    const entry = { at };
    this.live.add(entry);
    const timer = super.setTimer(at, () => {
      this.live.delete(entry);
      fn();
    });
    return {
      cancel: () => {
        this.live.delete(entry);
        timer.cancel();
      },
    };
  }

  /** When the earliest pending timer is due (+Infinity when none is). */
  nextTimerAt(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const e of this.live) if (e.at < next) next = e.at;
    return next;
  }
}

export interface Rig {
  clock: SteppingClock;
  ck: Callkeeper;
  /** http://127.0.0.1:PORT: the token authority and the control API. */
  base: string;
  /** The Graph service root, base + /v1.0. */
  graph: string;
  /** A client-credentials TokenCredential against the server, on the shared clock. */
  credential(): TokenCredentialLike;
  /** A fresh access token from the server's token endpoint. */
  token(): Promise<string>;
  /** Creates calls in-process (as POST /communications/calls does); returns their ids. */
  createCalls(n: number): Promise<string[]>;
  /**
   * Advances virtual time by `totalMs` in `stepMs` steps, letting keeper and server settle after
   * each. Steps in which no timer falls due are skipped (they would change nothing): the clock
   * jumps to the end of the step in which the next timer falls, as stepping would have reached it.
   */
  run(keeper: KeepAlive, totalMs: number, stepMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where the server's notifications about our calls go: a local sink that accepts them at once.
 * (A callbackUri on the internet would make every test wait on DNS and connect timeouts.)
 */
async function notificationSink(): Promise<{ url: string; close(): Promise<void> }> {
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(202);
      res.end();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/api/calls`,
    close: async () => {
      sink.closeAllConnections();
      await new Promise<void>((resolve) => sink.close(() => resolve()));
    },
  };
}

export async function startRig(): Promise<Rig> {
  const clock = new SteppingClock();
  const ck = await createCallkeeper({ dataDir: undefined, clock, logger: false, ...suiteKeys() });
  const base = await ck.listen('127.0.0.1', 0);
  // The keeper does not read notifications, and at 10,000 calls delivering them costs the
  // server more than all the keepAlives together: queue them, do not deliver them.
  await ck.notifier.stop();
  const sink = await notificationSink();
  const body = { ...CALL_BODY, callbackUri: sink.url };
  const owner = {
    appId: DEFAULT_APP.clientId,
    tenantId: DEFAULT_APP.tenantId,
    displayName: DEFAULT_APP.displayName,
    roles: DEFAULT_APP.roles,
  };
  const credential = () =>
    clientCredentials({
      authority: base,
      tenantId: DEFAULT_APP.tenantId,
      clientId: DEFAULT_APP.clientId,
      clientSecret: DEFAULT_APP.clientSecret,
      clock,
    });
  return {
    clock,
    ck,
    base,
    graph: `${base}/v1.0`,
    credential,
    async token() {
      const t = await credential().getToken('https://graph.microsoft.com/.default');
      assert.ok(t);
      return t.token;
    },
    async createCalls(n) {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push((await ck.service.create(owner, body)).id);
      return ids;
    },
    async run(keeper, totalMs, stepMs = 1000) {
      const start = clock.now();
      const end = start + totalMs;
      while (clock.now() < end) {
        const now = clock.now();
        // The step boundary (start + k steps) at or after the next timer, but at least one step on.
        // The first step is always taken: work queued before run() (a track()) is not a timer yet.
        const next = now === start ? now : clock.nextTimerAt();
        const k = Math.max(Math.floor((now - start) / stepMs) + 1, Math.ceil((next - start) / stepMs));
        clock.advance(Math.min(end, start + k * stepMs) - now);
        await keeper.whenIdle();
        await ck.scheduler.idle();
      }
    },
    async close() {
      await ck.close().catch(async (err: unknown) => {
        // ck.close() stops the notifier a second time, which undici refuses (its Agent is
        // already closed) before the store is closed: close the store ourselves.
        if (!(err instanceof Error && /destroyed/i.test(err.message))) throw err;
        await ck.store.close();
      });
      await sink.close();
    },
  };
}

/** A request the proxy saw, stamped with virtual time. */
export interface Seen {
  at: number;
  method: string;
  path: string;
  /** The call id, for keepAlive requests. */
  callId: string | undefined;
  status: number;
  /** The request's headers, as sent by the keeper. */
  headers: Record<string, string>;
  /** The answer's request-id header, when the server sent one. */
  requestId: string | undefined;
  /** The request body. */
  body: string;
}

/** What the proxy does with a request: pass it on, answer it itself, or drop the connection. */
export type Verdict = 'forward' | 'reset' | { status: number; headers?: Record<string, string>; body?: string };

/**
 * A real HTTP proxy in front of callkeeper. `decide` picks, per request, whether to forward it
 * or answer a fault; every request is recorded with the virtual time it arrived.
 */
export class FaultProxy {
  readonly seen: Seen[] = [];
  private readonly upstream = new Agent({ connections: 128 });

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(
    target: string,
    clock: ManualClock,
    decide: (path: string, now: number) => Verdict = () => 'forward',
  ): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined;
    const server = createServer((req, res) => {
      if (proxy) void proxy.handle(req, res, target, clock, decide);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    proxy = new FaultProxy(server, `http://127.0.0.1:${port}`);
    return proxy;
  }

  /** keepAlive requests seen for one call. */
  keepAlivesOf(callId: string): Seen[] {
    return this.seen.filter((s) => s.callId === callId);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.upstream.close();
  }

  private async handle(
    req: IncomingMessage,
    res: ServerResponse,
    target: string,
    clock: ManualClock,
    decide: (path: string, now: number) => Verdict,
  ) {
    const path = req.url ?? '/';
    const at = clock.now();
    const callId = /\/communications\/calls\/([^/]+)\/keepAlive$/.exec(path)?.[1];
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const verdict = decide(path, at);
    const sentBody = Buffer.concat(chunks).toString('utf8');
    const sent: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') sent[k] = v;
    const record = (status: number, requestId?: string) =>
      this.seen.push({ at, method: req.method ?? '', path, callId, status, headers: sent, requestId, body: sentBody });
    if (verdict === 'reset') {
      record(0);
      req.socket.destroy();
      return;
    }
    if (verdict !== 'forward') {
      record(verdict.status);
      res.writeHead(verdict.status, { 'content-type': 'application/json', ...verdict.headers });
      res.end(verdict.body ?? '');
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === 'string' && k !== 'host' && k !== 'connection') headers[k] = v;
    }
    const body = Buffer.concat(chunks);
    const up = await request(`${target}${path}`, {
      method: (req.method ?? 'GET') as 'POST',
      headers,
      ...(body.length > 0 ? { body } : {}),
      dispatcher: this.upstream,
    });
    const text = await up.body.text();
    record(up.statusCode, typeof up.headers['request-id'] === 'string' ? up.headers['request-id'] : undefined);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(up.headers)) if (typeof v === 'string' && k !== 'connection' && k !== 'keep-alive') out[k] = v;
    res.writeHead(up.statusCode, out);
    res.end(text);
  }
}

/**
 * Runs a long test's body in a worker thread (with tsx's loader registered there too, unless the
 * tests run compiled: test/paths.ts) and resolves with what it returns. node:test tracks every async resource of the thread its tests
 * run in (an async hook), which costs a keeper run with thousands of HTTP round trips about a
 * fifth of its CPU; a worker has no such hook. The body runs `workerTask`'s handler in `file`
 * (the test file itself, `import.meta.url`); a failed assertion there fails the test here.
 */
export function inWorker<T>(file: string, task: string, data: unknown = null): Promise<T> {
  const worker = new Worker(workerBoot(file), { eval: true, workerData: { task, data } });
  return new Promise((resolve, reject) => {
    worker.once('message', (m: { ok: true; value: T } | { ok: false; message: string; stack: string }) => {
      if (m.ok) resolve(m.value);
      else reject(Object.assign(new Error(m.message), { stack: m.stack }));
      // A body that failed half-way may leave servers or connections open in the worker: end it.
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker ${task} exited (${code}) without a report`)));
  });
}

/**
 * In a worker started by `inWorker`: runs the named handler and posts its result (or its
 * error) back. Returns true there, so the file registers no tests in the worker.
 */
export function workerTask(handlers: Record<string, (data: never) => Promise<unknown>>): boolean {
  if (isMainThread || !parentPort) return false;
  const port = parentPort;
  const { task, data } = workerData as { task: string; data: never };
  const handler = handlers[task];
  if (!handler) throw new Error(`no worker task ${task}`);
  handler(data).then(
    (value) => {
      port.postMessage({ ok: true, value });
      port.close();
    },
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({ ok: false, message: e.message, stack: e.stack ?? e.message });
      port.close();
    },
  );
  return true;
}

/** Requests per window of `windowMs` over [from, to): the busiest window, when it began, and the mean. */
export function perWindow(
  times: ArrayLike<number>,
  from: number,
  to: number,
  windowMs: number,
): { max: number; mean: number; maxAt: number } {
  const windows = Math.ceil((to - from) / windowMs);
  const bins = new Uint32Array(windows);
  let total = 0;
  for (let k = 0; k < times.length; k++) {
    const i = Math.floor(((times[k] as number) - from) / windowMs);
    if (i >= 0 && i < windows) {
      bins[i] = (bins[i] ?? 0) + 1;
      total += 1;
    }
  }
  let max = 0;
  let maxAt = from;
  bins.forEach((n, i) => {
    if (n > max) {
      max = n;
      maxAt = from + i * windowMs;
    }
  });
  return { max, mean: total / windows, maxAt };
}

/** Requests per virtual second. */
export function perSecond(times: ArrayLike<number>, from: number, to: number): { max: number; mean: number; maxAt: number } {
  return perWindow(times, from, to, 1000);
}

// The rig's own checks: the proxy really forwards, really injects faults, and records time.
// Registered only when this file is the one being run, not when another test imports it.
const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isEntry) selfTests();

function selfTests(): void {
  let rig: Rig;
  before(async () => {
    rig = await startRig();
  });
  after(() => rig.close());

  test('harness: the fault proxy forwards, answers faults inside its window, and stamps virtual time', async () => {
    const [id] = await rig.createCalls(1);
    assert.ok(id);
    const start = rig.clock.now();
    const proxy = await FaultProxy.start(rig.base, rig.clock, (_path, now) =>
      now >= start + MINUTE && now < start + 2 * MINUTE ? { status: 503, headers: { 'retry-after': '7' } } : 'forward',
    );
    try {
      const token = await rig.token();
      const post = async () => {
        const res = await request(`${proxy.url}/v1.0/communications/calls/${id}/keepAlive`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        });
        await res.body.dump();
        return res;
      };
      assert.equal((await post()).statusCode, 200);
      rig.clock.advance(MINUTE);
      const faulted = await post();
      assert.equal(faulted.statusCode, 503);
      assert.equal(faulted.headers['retry-after'], '7');
      rig.clock.advance(MINUTE);
      assert.equal((await post()).statusCode, 200);
      assert.deepEqual(
        proxy.keepAlivesOf(id).map((s) => [s.at - start, s.status]),
        [
          [0, 200],
          [MINUTE, 503],
          [2 * MINUTE, 200],
        ],
      );
    } finally {
      await proxy.close();
    }
  });

  test('harness: perSecond and perWindow bin by virtual time and ignore what falls outside', () => {
    assert.deepEqual(perSecond([0, 10, 999, 1000, 2500, 3000, -1], 0, 3000), { max: 3, mean: 5 / 3, maxAt: 0 });
    assert.deepEqual(perWindow([0, 59_999, 60_000, 61_000, 62_000], 0, 120_000, 60_000), { max: 3, mean: 2.5, maxAt: 60_000 });
  });
}
