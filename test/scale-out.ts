/**
 * Helpers of the several-instance tests (multi-instance.test.ts, redis-cluster.test.ts): a bot
 * that can hold deliveries, the notifications an instance's store lists for a call, and which
 * TCP ports a child process holds (to tell whose deliveries the bot is holding).
 */
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { guidOf } from '../src/notifications/notification-headers.js';
import type { ServeProcess } from './cli-process.js';
import { callBody, fetchToken } from './helpers.js';

/** One notification POST as the bot saw it. */
export interface Delivery {
  /** client-request-id: the same on every retry of one outbox entry. */
  crid: string;
  callId: string;
  /** "changeType/state" of each call notification in the POST (rosters and operations: "changeType <path>"). */
  states: string[];
  /** The sender's TCP port (its process is found with tcpPortsOf). */
  remotePort: number;
}

/**
 * A loopback bot. Answers 202 and records each delivery in `received`; while `hold` is on it
 * answers nothing, keeping each request open in `held` until release(); a held request whose
 * sender goes away (a kill -9) lands in `dropped`.
 */
export class HoldingBot {
  readonly received: Delivery[] = [];
  readonly held = new Map<ServerResponse, Delivery>();
  readonly dropped: Delivery[] = [];
  hold = false;
  private server: Server | undefined;
  private waiters: (() => void)[] = [];
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/api/calls`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => {
        text += c.toString();
      });
      req.on('end', () => {
        const body = JSON.parse(text) as { value: { resourceUrl: string; changeType: string; resourceData: { state?: string } }[] };
        const first = body.value[0]?.resourceUrl ?? '';
        const callId = /\/communications\/calls\/([^/]+)/.exec(first)?.[1] ?? '';
        const callUrl = `/communications/calls/${callId}`;
        const d: Delivery = {
          crid: String(req.headers['client-request-id']),
          callId,
          states: body.value.map((n) =>
            n.resourceUrl === callUrl
              ? `${n.changeType}/${n.resourceData.state ?? ''}`
              : `${n.changeType} ${n.resourceUrl.slice(callUrl.length)}`,
          ),
          remotePort: req.socket.remotePort ?? 0,
        };
        if (this.hold) {
          this.held.set(res, d);
          res.on('close', () => {
            if (!this.held.delete(res)) return;
            this.dropped.push(d);
            this.changed();
          });
        } else this.answer(res, d);
        this.changed();
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  private answer(res: ServerResponse, d: Delivery): void {
    this.received.push(d);
    res.statusCode = 202;
    res.end();
  }

  /** Answers every held request (202) and stops holding. */
  release(): void {
    this.hold = false;
    for (const [res, d] of [...this.held]) {
      this.held.delete(res);
      this.answer(res, d);
    }
    this.changed();
  }

  /** The call's deliveries in arrival order, as client-request-ids. */
  cridsOf(callId: string): string[] {
    return this.received.filter((d) => d.callId === callId).map((d) => d.crid);
  }

  /** The "changeType/state" sequence the bot was told of a call (its rosters and operations left out), in arrival order. */
  statesOf(callId: string): string[] {
    return this.received
      .filter((d) => d.callId === callId)
      .flatMap((d) => d.states)
      .filter((x) => !x.includes(' '));
  }

  /** Resolves once `ok()` holds, checked after every arrival, drop or release; rejects after `ms` (real time). */
  async until(ok: () => boolean, what: string, ms = 120_000): Promise<void> {
    const end = Date.now() + ms;
    while (!ok()) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private changed(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async stop(): Promise<void> {
    for (const res of this.held.keys()) res.destroy();
    this.held.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The local TCP ports a process holds open (Linux: its socket fds matched in /proc/net/tcp*). */
export function tcpPortsOf(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9] as string)) ports.add(Number.parseInt((cols[1] ?? '').split(':')[1] ?? '0', 16));
    }
  }
  return ports;
}

/** An outbox entry as GET /_callkeeper/notifications lists it. */
export interface ListedEntry {
  seq: number;
  callId: string;
  transition: string;
  status: string;
  notifications: { changeType: string; state: string }[];
}

/** A call's outbox entries, oldest first, as `base` lists them; each with the client-request-id its POSTs carry. */
export async function entriesOf(base: string, callId: string): Promise<(ListedEntry & { crid: string })[]> {
  const res = await fetch(`${base}/_callkeeper/notifications?callId=${callId}&$top=1000`);
  if (res.status !== 200) throw new Error(`notifications of ${callId} answered ${res.status}`);
  const { value } = (await res.json()) as { value: ListedEntry[] };
  return value.sort((a, b) => a.seq - b.seq).map((e) => ({ ...e, crid: guidOf(`notification:${e.callId}:${e.seq}`) }));
}

/** Drops consecutive repeats: at-least-once delivery may repeat an entry, never reorder. */
export const collapse = (xs: string[]): string[] => xs.filter((x, i) => i === 0 || xs[i - 1] !== x);

export interface ControlCall {
  id: string;
  state: string;
  lastKeepAliveDateTime: string | null;
  resultInfo: { code: number; subcode: number } | null;
}

export async function controlCall(base: string, id: string): Promise<{ status: number; call?: ControlCall }> {
  const res = await fetch(`${base}/_callkeeper/calls/${id}`);
  return res.status === 200 ? { status: 200, call: (await res.json()) as ControlCall } : { status: res.status };
}

/** A Graph client of several instances with one token (the signing key is in the shared store). */
export class Fleet {
  private constructor(
    readonly instances: ServeProcess[],
    readonly token: string,
  ) {}

  static async of(instances: ServeProcess[]): Promise<Fleet> {
    return new Fleet(instances, await fetchToken((instances[0] as ServeProcess).base));
  }

  base(i: number): string {
    return (this.instances[i] as ServeProcess).base;
  }

  graph(i: number, path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.token}`);
    return fetch(`${this.base(i)}/v1.0/communications/calls${path}`, { ...init, headers });
  }

  async create(i: number, callbackUri: string): Promise<Response> {
    return this.graph(i, '', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(callBody({ callbackUri })),
    });
  }

  async createId(i: number, callbackUri: string): Promise<string> {
    const res = await this.create(i, callbackUri);
    if (res.status !== 201) throw new Error(`create on instance ${i} answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { id: string }).id;
  }

  keepAlive(i: number, id: string): Promise<Response> {
    return this.graph(i, `/${id}/keepAlive`, { method: 'POST' });
  }

  hangUp(i: number, id: string): Promise<Response> {
    return this.graph(i, `/${id}`, { method: 'DELETE' });
  }

  async advance(i: number, ms: number): Promise<{ epochMs: number }> {
    const res = await fetch(`${this.base(i)}/_callkeeper/clock/advance`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ms }),
    });
    if (res.status !== 200) throw new Error(`clock/advance on instance ${i} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as { epochMs: number };
  }

  async now(i: number): Promise<number> {
    return ((await (await fetch(`${this.base(i)}/_callkeeper/clock`)).json()) as { epochMs: number }).epochMs;
  }

  /** Resolves once no instance's store lists a pending notification (polled, 100 ms apart). */
  async drained(i: number, ms = 180_000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      const res = await fetch(`${this.base(i)}/_callkeeper/notifications?status=pending&$top=1`);
      const { value } = (await res.json()) as { value: unknown[] };
      if (value.length === 0) return;
      if (Date.now() > end) throw new Error(`notifications still pending after ${ms / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
