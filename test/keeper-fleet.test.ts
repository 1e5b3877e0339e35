/**
 * The keeper fleet, end to end, as production runs it: a callkeeper server (child process,
 * in-memory, virtual time at SCALE x), one real redis-server, and `callkeeper keep --redis`
 * replicas as child processes, each behind a recording proxy of its own (so the test, not the
 * replicas, says who sent which keepAlive when; RecordingProxy: bytes piped unchanged, request
 * and status lines read off the streams, the records checked against the server's count). 5,000 calls; replicas are SIGKILLed one
 * at a time while new ones join. Shown: no call ends by keepAlive timeout (asked of the server),
 * no call gets keepAlives from two replicas within one interval beyond the takeover that follows
 * a kill (from the proxies' records), and the calls spread within ±20% over the live replicas
 * (from the leases in Redis and from who sent in the last interval of each phase).
 *
 * Two forms: by default one step (kill A while D joins: about 2.5 minutes; it holds all three
 * points: a takeover after a SIGKILL, a join, the spread over the replicas that are left);
 * CALLKEEPER_LONG_TESTS=1 adds three more (kill B while E joins, F joins, then C is killed: a
 * second takeover by a fleet that has already taken one over; about 5 minutes).
 *
 * The arithmetic (virtual time; at SCALE 30 a virtual minute is two real seconds):
 * - Graph's (callkeeper's) keepAlive timeout T = 45 min; the replicas send every I = 15 min.
 * - A SIGKILLed replica's heartbeat and leases lapse within L = 3 min (--lease-ttl 3m); the
 *   others look every L/4 = 45 s, so they hold its calls within L + L/4 = 3.75 min, read each
 *   call's last success from Redis and send at once for calls already due, paced at twice the
 *   mean rate (the backlog of 3.75 min of sends drains in under 2 min).
 * - Worst gap for a call: I + 3.75 + 2 ≈ 21 min, 24 min short of T: the test survives the
 *   machine stalling for 48 real seconds at SCALE 30. A replica stops sending 5 s (virtual)
 *   before its own view of a lease ends; replicas read the server's clock at start
 *   (--clock-from, best of 5 round trips), so their skew is a few ms real, well under that.
 * - Why L = 3 min and not the 60 s default: at SCALE 30, 60 s is two real seconds, and a replica
 *   that stalls that long on a loaded machine would lose (and hand over) its leases. 3 min is
 *   6 real seconds of stall before a live replica loses anything.
 * Load: 5,000 calls / 15 min at SCALE 30 is 167 keepAlives per real second through the
 * proxies into the server (twice that while the calls get their first keepAlives). SCALE 60
 * (333 a second) passed alone and at a load average of 12, but failed one run in two beside
 * the other long files and lint (`npm test`, CI): while the calls were created the server
 * answered some keepAlives up to 44 s real late, and 21 to 680 calls ended. At SCALE 30 a
 * real second of such lag costs half as many virtual minutes, and the server has half the load.
 * SCALE 120 (with a 6-minute lease) was tried: it passed once at a load average of 19 (153 s, 81 s of it creating the
 * calls), but at 22 the replicas, flooded with first keepAlives at 1,333 per real second, did
 * not register 5,000 calls within 2 minutes. SCALE 600 would be 3,333 keepAlives per real
 * second, and every margin above ten times thinner.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import { type Dispatcher, Pool } from 'undici';
import { DEFAULT_APP } from '../src/auth/apps.js';
import type { ScaledClock } from '../src/clock/clock.js';
import { clientCredentials } from '../src/keeper/client-credentials.js';
import { clockFrom } from '../src/keeper/keep-command.js';
import { SharedKeys } from '../src/keeper/shared/keys.js';
import { CLI, childEnv, type ServeProcess, spawnServe } from './cli-process.js';
import { type RedisServer, startRedis } from './redis-server.js';

const MINUTE = 60_000;
const LONG = process.env.CALLKEEPER_LONG_TESTS === '1';
const SCALE = 30;
const CALLS = 5_000;
/**
 * Calls created at once. Creating a call costs the server about ten keepAlives' worth of CPU; 16
 * at a time on a loaded machine queued keepAlives behind them for up to 44 s real (44 virtual
 * min at SCALE 60: calls ended, seen in CI). 4 leave the server room for the keepAlives.
 */
const CREATORS = 4;
const INTERVAL = 15 * MINUTE;
const LEASE_TTL = 3 * MINUTE;
/** Before the first step: every call's first keepAlive (done by the end of the creation; see below), then one clean interval. */
const FIRST_PHASE = 25 * MINUTE;
/** A phase: a kill and/or a join, then time for the fleet to settle and for one clean interval. */
const PHASE = 25 * MINUTE;
/** Two sends of a call from different replicas closer than this are a double send, unless a kill explains them. */
const DOUBLE = INTERVAL / 2;
/**
 * A request a replica wrote just before its SIGKILL can reach its proxy (in this process) a
 * moment after the kill was recorded: 1 virtual minute is two real seconds at SCALE 30.
 */
const KILL_SLACK = MINUTE;
/**
 * How late a keepAlive may reach its proxy against its slot when the machine stalls a replica
 * (or Redis, which holds its sends back until a sync) for 5 real seconds: 5 virtual minutes.
 * Every call must still be sent at least every I + LATE (20 min, 25 short of T). (A minute was
 * too little at a load average of 20: 1,302 calls came a few minutes late, none near T.)
 */
const LATE = 5 * MINUTE;
const NAMESPACE = 'fleet';
const BUCKETS = 1024;
/** Real-time limit of any one wait: generous, the machine is shared. */
const WAIT_MS = 120_000;

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
});

/** Where the server's notifications go: accepted at once (the replicas do not read them). */
async function sink(): Promise<string> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(202);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => closeServer(server));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/calls`;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** One keepAlive as the proxy saw it: which call (index), when (virtual ms), with what answer. */
interface Send {
  call: number;
  at: number;
  status: number;
  /** When the answer came back (virtual ms). */
  answeredAt: number;
}

/**
 * Reads the message heads off one direction of an HTTP/1.1 connection: each head's first line
 * goes to `onHead`, its body (framed by content-length) is skipped. A framing it does not read
 * (chunked, or a response delimited by the connection's close) is an error, never a guess: the
 * server's answers all carry a content-length, and a keepAlive request has no body.
 */
class HeadReader {
  private partial: Buffer | undefined;
  private skip = 0;

  constructor(
    private readonly responses: boolean,
    private readonly onHead: (firstLine: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let data = chunk;
    if (this.partial) {
      data = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    let i = 0;
    while (i < data.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const end = data.indexOf('\r\n\r\n', i, 'latin1');
      if (end < 0) {
        this.partial = data.subarray(i);
        if (this.partial.length > 64 * 1024) throw new Error('an HTTP head longer than 64 KB');
        return;
      }
      const head = data.toString('latin1', i, end);
      i = end + 4;
      const firstLine = head.slice(0, (head.indexOf('\r\n') + 1 || head.length + 1) - 1);
      if (/\r\ntransfer-encoding:/i.test(head)) throw new Error(`chunked framing (not read here): ${firstLine}`);
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head)?.[1];
      const status = this.responses ? Number(firstLine.slice(9, 12)) : 0;
      if (length === undefined && this.responses && status >= 200 && status !== 204 && status !== 304) {
        throw new Error(`a response without content-length (not read here): ${firstLine}`);
      }
      this.skip = Number(length ?? 0);
      this.onHead(firstLine);
    }
  }
}

/**
 * A replica's own proxy in front of the server: forwards every byte both ways, unchanged, and
 * records each keepAlive (which call, when it arrived in virtual time, the status answered). It
 * works at the TCP level and reads only the request and status lines off the streams: HTTP/1.1
 * answers a connection's requests in order, so the n-th status line on a connection answers its
 * n-th request. (An HTTP proxy that parsed and re-sent every request cost this process about
 * 0.6 ms of CPU per keepAlive, 25 s of the file's CPU.) When a replica dies, the connection to
 * the server stays open until the requests it had sent are answered, as they would be by Graph:
 * those keepAlives count. The test compares the records with the server's own count.
 */
class RecordingProxy {
  readonly sends: Send[] = [];
  url = '';
  /** What went wrong in the proxy itself (a framing it cannot read): the test fails on it. */
  readonly errors: string[] = [];
  private server: NetServer | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly target: { host: string; port: number },
    private readonly clock: ScaledClock,
    private readonly index: Map<string, number>,
  ) {}

  async start(): Promise<this> {
    this.server = createNetServer((client) => this.connection(client));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  private connection(client: Socket): void {
    const upstream = connect(this.target);
    this.sockets.add(client).add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    /** The requests of this connection not answered yet, in order: the call (undefined if not a keepAlive) and when. */
    const waiting: { call: number | undefined; at: number }[] = [];
    let clientGone = false;
    const fail = (err: unknown) => {
      this.errors.push(String(err));
      client.destroy();
      upstream.destroy();
    };
    const requests = new HeadReader(false, (line) => {
      const id = /^POST \S*\/communications\/calls\/([^/ ]+)\/keepAlive /.exec(line)?.[1];
      waiting.push({ call: id === undefined ? undefined : this.index.get(decodeURIComponent(id)), at: this.clock.now() });
    });
    const responses = new HeadReader(true, (line) => {
      const status = Number(line.slice(9, 12));
      if (status < 200) return; // an interim answer; the final one follows
      const req = waiting.shift();
      if (req?.call !== undefined) this.sends.push({ call: req.call, at: req.at, status, answeredAt: this.clock.now() });
      if (clientGone && waiting.length === 0) upstream.destroy();
    });
    client.on('data', (chunk: Buffer) => {
      try {
        requests.push(chunk);
      } catch (err) {
        fail(err);
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      try {
        responses.push(chunk);
      } catch (err) {
        fail(err);
        return;
      }
      if (!clientGone) client.write(chunk);
    });
    // The replica went away (closed, or SIGKILLed): what it had sent is still answered.
    const onClientGone = () => {
      clientGone = true;
      if (waiting.length === 0) upstream.destroy();
    };
    client.on('end', onClientGone);
    client.on('close', onClientGone);
    client.on('error', () => undefined);
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    client.on('close', () => this.sockets.delete(client));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

interface Replica {
  name: string;
  child: ChildProcess;
  proxy: RecordingProxy;
  output(): string;
  exited: Promise<unknown>;
  killedAt?: number;
}

/** CPU seconds (user + system) a live process has used so far, from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

test(`keeper fleet: ${CALLS} calls, 3 \`callkeeper keep --redis\` replicas (child processes) on one Redis, SIGKILLed one at a time while others join: no call times out, no double sends beyond a takeover, spread within 20%`, async (t) => {
  const redis: RedisServer = await startRedis();
  cleanups.push(() => redis.stop());
  const callback = await sink();
  const server: ServeProcess = await spawnServe(
    ['--memory', '--no-https', '--time-scale', String(SCALE), '--log-level', 'error'],
    undefined,
    undefined,
    {
      longRunning: true,
    },
  );
  cleanups.push(() => {
    server.child.kill('SIGKILL');
  });
  const base = server.base;
  const target = { host: new URL(base).hostname, port: Number(new URL(base).port) };
  const clock = await clockFrom(base);
  const inspect = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  cleanups.push(() => inspect.disconnect());
  const keys = new SharedKeys(NAMESPACE);

  // The calls, created over real HTTP as a bot would (once the replicas are up).
  const credential = clientCredentials({
    authority: base,
    tenantId: DEFAULT_APP.tenantId,
    clientId: DEFAULT_APP.clientId,
    clientSecret: DEFAULT_APP.clientSecret,
    clock,
  });
  const pool = new Pool(base, { connections: CREATORS });
  cleanups.push(() => pool.close());
  const ids: string[] = [];
  const body = JSON.stringify({
    callbackUri: callback,
    requestedModalities: ['audio'],
    mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
    targets: [{ identity: { user: { id: 'u1' } } }],
  });
  const index = new Map<string, number>();
  let createdAt = 0;
  let createdIn = 0;
  /** Creates the calls, handing each id to `give` as soon as the server answered. */
  const createCalls = async (give: (id: string, i: number) => void) => {
    const createdFrom = clock.now();
    const token = (await credential.getToken('https://graph.microsoft.com/.default'))?.token;
    assert.ok(token);
    let next = 0;
    await Promise.all(
      Array.from({ length: CREATORS }, async () => {
        while (next < CALLS) {
          next += 1;
          const res: Dispatcher.ResponseData = await pool.request({
            method: 'POST',
            path: '/v1.0/communications/calls',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body,
          });
          const created = (await res.body.json()) as { id?: string };
          assert.equal(res.statusCode, 201, JSON.stringify(created));
          const id = created.id as string;
          index.set(id, ids.length);
          ids.push(id);
          give(id, ids.length - 1);
        }
      }),
    );
    createdAt = createdFrom;
    createdIn = Math.round((clock.now() - createdFrom) / MINUTE);
  };

  const replicas: Replica[] = [];
  const start = async (name: string, idsFromStdin = false): Promise<Replica> => {
    const proxy = await new RecordingProxy(target, clock, index).start();
    cleanups.push(() => proxy.close());
    const child = spawn(
      process.execPath,
      [
        CLI,
        'keep',
        ...(idsFromStdin ? ['--ids-from', '-'] : []),
        '--redis',
        redis.url,
        '--namespace',
        NAMESPACE,
        '--lease-ttl',
        `${LEASE_TTL / MINUTE}m`,
        '--interval',
        '15m',
        '--timeout',
        '45m',
        '--clock-from',
        base,
        '--replica-id',
        name,
        '--base-url',
        `${proxy.url}/v1.0`,
        '--authority',
        base,
        '--tenant',
        DEFAULT_APP.tenantId,
        '--client-id',
        DEFAULT_APP.clientId,
      ],
      {
        env: childEnv({ ...process.env, AZURE_CLIENT_SECRET: DEFAULT_APP.clientSecret }),
        stdio: [idsFromStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = once(child, 'exit');
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    const r: Replica = { name, child, proxy, output: () => out, exited };
    replicas.push(r);
    return r;
  };
  const kill = async (r: Replica) => {
    r.killedAt = clock.now();
    r.child.kill('SIGKILL');
    await r.exited;
  };

  /** Waits (real time, generous) until `ok()` holds, looking every 200 ms. */
  const until = async (what: string, ok: () => Promise<boolean> | boolean, detail: () => Promise<string> | string = () => '') => {
    const deadline = Date.now() + WAIT_MS;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${await detail()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };
  const untilVirtual = (at: number) => until(`virtual time ${new Date(at).toISOString()}`, () => clock.now() >= at);

  /** Commands this test sent to Redis itself (not the replicas'): left out of the per-keepAlive count. */
  let ownCommands = 0;
  /** Calls per live lease holder, as Redis has it: every bucket with calls, held by whom. */
  const holdings = async (): Promise<Map<string, number>> => {
    ownCommands += BUCKETS + 1;
    const leases = (await inspect.hgetall(keys.leases)) as Record<string, string>;
    const pipe = inspect.pipeline();
    for (let b = 0; b < BUCKETS; b++) pipe.hlen(keys.calls(b));
    const sizes = (await pipe.exec()) ?? [];
    const now = clock.now();
    const out = new Map<string, number>();
    for (let b = 0; b < BUCKETS; b++) {
      const n = Number(sizes[b]?.[1] ?? 0);
      if (n === 0) continue;
      const [holder, , exp] = (leases[String(b)] ?? '||0').split('|');
      const who = holder && Number(exp) > now ? holder : '(none)';
      out.set(who, (out.get(who) ?? 0) + n);
    }
    return out;
  };
  const spreadOk = (h: Map<string, number>, live: string[]) => {
    const mean = CALLS / live.length;
    return (
      [...h.keys()].every((k) => live.includes(k)) &&
      live.every((r) => (h.get(r) ?? 0) >= 0.8 * mean && (h.get(r) ?? 0) <= 1.2 * mean) &&
      [...h.values()].reduce((a, b) => a + b, 0) === CALLS
    );
  };
  const converge = async (live: string[]) => {
    await until(
      `the calls to spread over ${live.join(', ')}`,
      async () => spreadOk(await holdings(), live),
      async () =>
        `${JSON.stringify([...(await holdings())])}; ${replicas
          .filter((r) => live.includes(r.name))
          .map((r) => `${r.name} (exit ${r.child.exitCode ?? r.child.signalCode ?? 'none'}): ${r.output().slice(-400)}`)
          .join(' | ')}`,
    );
    const h = await holdings();
    t.diagnostic(`held: ${live.map((r) => `${r} ${h.get(r)}`).join(', ')}`);
  };
  /** Every keepAlive of call `i` as the proxies saw it: replica@sent-answered:status, in virtual seconds from `from`. */
  const sendsOf = (i: number, from: number) =>
    replicas
      .flatMap((r) =>
        r.proxy.sends
          .filter((s) => s.call === i)
          .map((s) => `${r.name}@${Math.round((s.at - from) / 1000)}-${Math.round((s.answeredAt - from) / 1000)}:${s.status}`),
      )
      .join(' ');
  /** Who sent the keepAlives of the last interval: every call once, from the live replicas, spread within 20%. */
  const checkLastInterval = (live: string[], to: number) => {
    const from = to - INTERVAL;
    const seen = new Set<number>();
    const per = new Map<string, number>();
    for (const r of replicas) {
      for (const s of r.proxy.sends) {
        // A call whose slot is at the window's edge may come late (a stalled replica): coverage
        // looks LATE further back; the counts per replica are of the exact interval.
        if (s.at < from - LATE || s.at >= to || s.status !== 200) continue;
        seen.add(s.call);
        if (s.at >= from) per.set(r.name, (per.get(r.name) ?? 0) + 1);
      }
    }
    if (seen.size < CALLS) {
      const missing = ids.map((_, i) => i).filter((i) => !seen.has(i));
      const story = missing.slice(0, 3).map((i) => `${ids[i]}: ${sendsOf(i, from)}`);
      assert.fail(
        `${missing.length} calls had no keepAlive in the interval before ${new Date(to).toISOString()} (virtual seconds from its start): ${story.join('; ')}`,
      );
    }
    assert.deepEqual([...per.keys()].sort(), [...live].sort(), 'sent by the live replicas only');
    const mean = [...per.values()].reduce((a, b) => a + b, 0) / live.length;
    for (const [r, n] of per) assert.ok(n >= 0.8 * mean && n <= 1.2 * mean, `${r} sent ${n} (mean ${mean})`);
    t.diagnostic(`sent in the last interval: ${[...per].map(([r, n]) => `${r} ${n}`).join(', ')}`);
  };

  // Three replicas; each call is piped to one of them as soon as it is created (as a bot hands
  // its new calls to the fleet), so none waits long for its first keepAlive however slow the
  // machine makes the creation of 5,000.
  const [a, b, c] = [await start('A', true), await start('B', true), await start('C', true)] as [Replica, Replica, Replica];
  for (const r of [a, b, c]) await until(`${r.name} to join`, () => /replica \w+ of fleet/.test(r.output()), r.output);
  await createCalls((id, i) => [a, b, c][i % 3]?.child.stdin?.write(`${id}\n`));
  for (const r of [a, b, c]) r.child.stdin?.end();
  const commandsAt = async () => {
    ownCommands += 1;
    return Number(/total_commands_processed:(\d+)/.exec(await inspect.info('stats'))?.[1] ?? 0);
  };
  const commands0 = await commandsAt();
  const tracked = async () => [...(await holdings()).values()].reduce((x, y) => x + y, 0);
  await until(
    'every call to be tracked',
    async () => (await tracked()) === CALLS,
    // A call the server ended (its keepAlives came too late: a machine too loaded for SCALE) is
    // untracked by the replica that got the 404: say so rather than only that the count is short.
    async () => {
      const ended = (
        (await (await fetch(`${base}/_callkeeper/calls?state=ended&$top=1000`)).json()) as {
          value: { id: string; createdDateTime: string; endedDateTime: string; lastKeepAliveDateTime: string | null }[];
        }
      ).value;
      const rel = (iso: string | null) => (iso ? `${Math.round((Date.parse(iso) - createdAt) / 1000)} s` : 'none');
      const story = ended.slice(0, 3).map(({ id, createdDateTime, endedDateTime, lastKeepAliveDateTime }) => {
        const i = index.get(id) ?? -1;
        return `#${i} ${id} (created ${rel(createdDateTime)}, last keepAlive ${rel(lastKeepAliveDateTime)}, ended ${rel(endedDateTime)}): ${sendsOf(i, createdAt) || 'no keepAlive'}`;
      });
      return `${await tracked()} of ${CALLS} in Redis; server: ${JSON.stringify(((await (await fetch(`${base}/_callkeeper/health`)).json()) as { calls: unknown }).calls)}; creation took ${createdIn} virtual min; ended (sends from the first creation): ${story.join('; ')}`;
    },
  );
  {
    const all = replicas.flatMap((r) => r.proxy.sends);
    const slowest = all.reduce((m, x) => Math.max(m, x.answeredAt - x.at), 0);
    const late = all.filter((x) => x.answeredAt - x.at > MINUTE).length;
    process.stdout.write(
      `# creation ${createdIn} virtual min; ${all.length} keepAlives so far, slowest answer ${Math.round(slowest / 1000)} s virtual, ${late} answered over a virtual minute after they were sent\n`,
    );
  }
  let live = ['A', 'B', 'C'];
  await converge(live);
  // Tracked calls get their first keepAlive at once (nobody knows their last), paced at twice
  // the mean rate of what a replica holds (2 x tracked / 15 min). Calls come at a rate r per
  // replica while they are created: by t minutes into the creation r*t are tracked and r*t^2/15
  // sent, so the backlog is gone 15 min in, and the creation takes 20-60 s real (virtual min).
  // Were it instant, a replica's 1,667 would take 7.5 min. So 10 min after the fleet has spread
  // (FIRST_PHASE 25 min, 35 before: idle time) every first keepAlive has gone, and the interval
  // after that is the first clean one: from it on no call may get two keepAlives close together.
  let phaseEnd = clock.now() + FIRST_PHASE;
  const settledAt = phaseEnd - INTERVAL;
  await untilVirtual(phaseEnd);
  checkLastInterval(live, phaseEnd);

  const cpu = new Map<string, number>();
  const steps: [string, Replica | undefined, string | undefined][] = [
    ['kill A while D joins', a, 'D'],
    ...(LONG
      ? ([
          ['kill B while E joins', b, 'E'],
          ['F joins', undefined, 'F'],
          ['kill C', c, undefined],
        ] as [string, Replica | undefined, string | undefined][])
      : []),
  ];
  for (const [what, victim, newcomer] of steps) {
    if (victim) {
      cpu.set(victim.name, cpuSeconds(victim.child.pid));
      await kill(victim);
      live = live.filter((r) => r !== victim.name);
    }
    if (newcomer) live = [...live, (await start(newcomer)).name];
    t.diagnostic(`${what} at ${new Date(clock.now()).toISOString()}: live ${live.join(', ')}`);
    await converge(live);
    phaseEnd = clock.now() + PHASE;
    await untilVirtual(phaseEnd);
    checkLastInterval(live, phaseEnd);
  }
  const keptUntil = clock.now();

  // The server: not one call ended; every one still active.
  const health = await fetch(`${base}/_callkeeper/health`);
  const counts = ((await health.json()) as { calls: { active: number; ended: number } }).calls;
  assert.deepEqual(counts, { active: CALLS, ended: 0 }, 'no call ended (no keepAlive timeout, 408/8537)');
  const ended = (await (await fetch(`${base}/_callkeeper/calls?state=ended&$top=1000`)).json()) as { value: unknown[] };
  assert.deepEqual(ended.value, []);

  // No call got keepAlives from two replicas within half an interval, except the takeover of a
  // SIGKILLed replica's calls (it may have sent just before it died without storing the
  // success, so its successor sends at once): then the earlier sender is the dead one.
  const byCall: [number, string][][] = ids.map(() => []);
  for (const r of replicas) for (const s of r.proxy.sends) if (s.status === 200 && s.at >= settledAt) byCall[s.call]?.push([s.at, r.name]);
  const killedAt = new Map(replicas.filter((r) => r.killedAt !== undefined).map((r) => [r.name, r.killedAt as number]));
  let takeovers = 0;
  let maxGap = 0;
  for (const [i, list] of byCall.entries()) {
    list.sort((x, y) => x[0] - y[0]);
    for (let j = 1; j < list.length; j++) {
      const [at, who] = list[j] as [number, string];
      const [prevAt, prevWho] = list[j - 1] as [number, string];
      maxGap = Math.max(maxGap, at - prevAt);
      if (at - prevAt >= DOUBLE) continue;
      if (who === prevWho) assert.fail(`${ids[i]}: two keepAlives from ${who} ${at - prevAt} ms apart: ${JSON.stringify(list)}`);
      const died = killedAt.get(prevWho);
      assert.ok(
        died !== undefined && died >= prevAt - KILL_SLACK && died <= at,
        `${ids[i]}: keepAlives from ${prevWho} and ${who} ${at - prevAt} ms apart, and ${prevWho} was not killed in between: ${JSON.stringify(list)}`,
      );
      takeovers += 1;
    }
    assert.ok((list.at(-1)?.[0] ?? 0) > keptUntil - INTERVAL - LATE, `${ids[i]} is still being kept`);
  }
  const sends = replicas.reduce((n, r) => n + r.proxy.sends.filter((s) => s.status === 200).length, 0);
  const commands = (await commandsAt()) - commands0 - ownCommands;
  for (const r of replicas) if (!cpu.has(r.name)) cpu.set(r.name, cpuSeconds(r.child.pid));
  const cpuTotal = [...cpu.values()].reduce((x, y) => x + y, 0);
  const redisPid = Number(/process_id:(\d+)/.exec(await inspect.info('server'))?.[1]);
  const own = process.cpuUsage();
  t.diagnostic(
    `${sends} keepAlives; ${takeovers} sent early by a takeover after a kill; longest gap ${Math.round(maxGap / 1000)} s (timeout 2700 s); ` +
      `Redis ${(commands / sends).toFixed(2)} commands per keepAlive; replicas' CPU ${((cpuTotal * 1000) / sends).toFixed(3)} ms per keepAlive`,
  );
  t.diagnostic(
    `CPU: replicas ${cpuTotal.toFixed(1)} s, server ${cpuSeconds(server.child.pid).toFixed(1)} s, redis-server ${cpuSeconds(redisPid).toFixed(1)} s, ` +
      `this process ${((own.user + own.system) / 1e6).toFixed(1)} s`,
  );
  for (const r of replicas) {
    if (r.killedAt !== undefined) continue;
    r.child.kill('SIGTERM');
    await until(`${r.name} to stop on SIGTERM`, () => r.child.exitCode !== null || r.child.signalCode !== null);
    assert.match(r.output(), /callkeeper keep: interrupted, stopped\n$/, r.output().slice(-500));
  }
  // The proxies' record is the server's: every keepAlive it answered 200, one record each.
  assert.deepEqual(
    replicas.flatMap((r) => r.proxy.errors),
    [],
    'the proxies read every message',
  );
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const served = Number(/^callkeeper_keepalives_total\{status="200"\} (\d+)$/m.exec(metrics)?.[1]);
  const recorded = replicas.reduce((n, r) => n + r.proxy.sends.filter((s) => s.status === 200).length, 0);
  assert.equal(recorded, served, 'the proxies recorded every keepAlive the server answered 200, and only those');
});
