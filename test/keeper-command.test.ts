/** `callkeeper keep` (keepCommand) against a real callkeeper server, on virtual time. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { DEFAULT_APP } from '../src/auth/apps.js';
import type { KeepAlive } from '../src/keeper/keep-alive.js';
import { KEEP_EXIT, KEEP_HELP, keepCommand } from '../src/keeper/keep-command.js';
import { CLI } from './cli-process.js';
import { FaultProxy, MINUTE, type Rig, startRig } from './keeper-harness.test.js';
import { freePort, type RedisServer, startRedis } from './redis-server.js';

let rig: Rig;
let redis: RedisServer;
before(async () => {
  rig = await startRig();
  redis = await startRedis();
});
after(async () => {
  await rig.close();
  await redis.stop();
});

function capture(isTTY: boolean) {
  let text = '';
  return {
    stream: {
      isTTY,
      write(s: string) {
        text += s;
        return true;
      },
    },
    text: () => text,
  };
}

const args = () => [
  '--base-url',
  rig.graph,
  '--authority',
  rig.base,
  '--tenant',
  DEFAULT_APP.tenantId,
  '--client-id',
  DEFAULT_APP.clientId,
  '--client-secret',
  DEFAULT_APP.clientSecret,
];

/** Runs the command while stepping virtual time, until it returns. */
async function drive(argv: string[], isTTY: boolean, during: (k: KeepAlive) => Promise<void>) {
  const out = capture(isTTY);
  let keeper: KeepAlive | undefined;
  const abort = new AbortController();
  const done = keepCommand(argv, {
    stdout: out.stream,
    clock: rig.clock,
    env: {},
    signal: abort.signal,
    onStart: (k) => {
      keeper = k;
    },
  });
  assert.ok(keeper, 'the keeper is running once keepCommand has started');
  await during(keeper);
  abort.abort();
  await done;
  return out.text();
}

test('keep: keeps the named calls alive, prints status lines in a log, reports each end, stops when all have ended', async () => {
  const [a, b] = await rig.createCalls(2);
  assert.ok(a && b);
  let finished = false;
  const out = capture(false);
  let keeper: KeepAlive | undefined;
  const done = keepCommand([a, b, ...args(), '--interval', '10m'], {
    stdout: out.stream,
    clock: rig.clock,
    env: {},
    onStart: (k) => {
      keeper = k;
    },
  }).then(() => {
    finished = true;
  });
  assert.ok(keeper);
  await rig.run(keeper, 60 * MINUTE, 5000);
  assert.equal((await rig.ck.store.get(a))?.state, 'established', 'an hour later the call is up');
  for (const id of [a, b]) await (await request(`${rig.base}/_callkeeper/calls/${id}/expire`, { method: 'POST' })).body.dump();
  await rig.run(keeper, 15 * MINUTE, 5000);
  await done;
  assert.ok(finished);

  const text = out.text();
  assert.match(text, /^callkeeper keep: 2 calls at http:\/\/127\.0\.0\.1:\d+\/v1\.0, one keepAlive every 10m/);
  const statusLines = text.split('\n').filter((l) => l.startsWith('tracked '));
  assert.ok(statusLines.length >= 60, `a status line every virtual minute (${statusLines.length})`);
  assert.match(statusLines[0] ?? '', /^tracked 2 \| sent 0 \| last success none yet \| next send now \|/);
  assert.match(statusLines[1] ?? '', /^tracked 2 \| sent 2 \|/, 'the first keepAlives go out at once, not within 10 minutes');
  assert.ok(
    statusLines.some((l) =>
      /^tracked 2 \| sent 12 \| last success \d+m \d\ds ago \| next send in \d+m \d\ds \| failures 0 \| ended 0$/.test(l),
    ),
  );
  assert.match(text, new RegExp(`call ${a} ended \\(HTTP 404, code 8522\\); [01] left`));
  assert.match(text, new RegExp(`call ${b} ended \\(HTTP 404, code 8522\\); [01] left`));
  assert.match(text, /tracked 0 \| sent \d+ .*\| ended 2\ncallkeeper keep: every call has ended\n$/);
  assert.ok(!text.includes('\r'), 'no carriage returns in a log');
});

test('keep: on a terminal one status line is rewritten in place; stopping prints the final state', async () => {
  const [id] = await rig.createCalls(1);
  assert.ok(id);
  const text = await drive([id, ...args()], true, async (k) => {
    await rig.run(k, 20 * MINUTE, 1000);
  });
  assert.ok(text.includes('\r\x1b[2Ktracked 1 | sent 1 |'), 'status rewritten with \\r');
  assert.ok(text.split('\r\x1b[2Ktracked 1').length - 1 > 100, 'every virtual second');
  assert.match(text, /callkeeper keep: stopped\n$/);
  assert.equal((await rig.ck.store.get(id))?.state, 'established');
});

test('keep: credentials from the environment; a refused secret stops it at once with exit code 3 and one short line', async () => {
  const [id] = await rig.createCalls(1);
  assert.ok(id);
  for (const [clientId, secret, reason] of [
    [DEFAULT_APP.clientId, 'wrong secret', /invalid_client: AADSTS7000215: Invalid client secret provided\.\n/],
    ['ca11ca11-0000-4000-8000-0000000000ff', 'x', /unauthorized_client: AADSTS700016: [^\n]*\.\n/],
  ] as const) {
    const out = capture(false);
    const code = await keepCommand([id, '--base-url', `${rig.base}/v1.0`, '--authority', rig.base, '--interval', '1m', '--timeout', '5m'], {
      stdout: out.stream,
      clock: rig.clock,
      env: { AZURE_TENANT_ID: DEFAULT_APP.tenantId, AZURE_CLIENT_ID: clientId, AZURE_CLIENT_SECRET: secret },
    });
    assert.equal(code, KEEP_EXIT.credentials, 'no virtual time passed: it stopped on the first answer');
    const text = out.text();
    assert.match(text, new RegExp(`the token endpoint refused the credentials: ${reason.source}`));
    assert.ok(!text.includes('Ensure the secret'), 'not the whole AADSTS text');
    assert.equal(text.split('refused the credentials').length, 2, 'said once');
    assert.match(text, /callkeeper keep: check --tenant, --client-id and --client-secret; not retrying\n$/);
  }
});

test('keep: exit code 3 from the real CLI process on a wrong secret', async () => {
  const [id] = await rig.createCalls(1);
  assert.ok(id);
  const child = spawn(process.execPath, [CLI, 'keep', id, '--base-url', rig.graph, '--authority', rig.base], {
    env: { ...process.env, AZURE_TENANT_ID: DEFAULT_APP.tenantId, AZURE_CLIENT_ID: DEFAULT_APP.clientId, AZURE_CLIENT_SECRET: 'nope' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 3, out);
  assert.match(out, /invalid_client/);
});

test('keep: call ids from stdin and from a file; --scope is the scope asked for', async () => {
  const ids = await rig.createCalls(3);
  const [a, b, c] = ids as [string, string, string];
  const dir = mkdtempSync(join(tmpdir(), 'keep-ids-'));
  const file = join(dir, 'ids.txt');
  writeFileSync(file, `# calls of the night shift\n${c}\n\n`);
  const tokenProxy = await FaultProxy.start(rig.base, rig.clock);
  try {
    for (const [from, expected, stdin] of [
      ['-', [a, b], Readable.from([`${a}\n# skip me\n\n`, `${b}\r\n`])],
      [file, [c], undefined],
    ] as const) {
      const out = capture(false);
      const abort = new AbortController();
      let keeper: KeepAlive | undefined;
      const scope = 'https://graph.microsoft.com/.default';
      const done = keepCommand(['--ids-from', from, ...args().map((x) => (x === rig.base ? tokenProxy.url : x)), '--scope', scope], {
        stdout: out.stream,
        clock: rig.clock,
        env: {},
        signal: abort.signal,
        ...(stdin ? { stdin } : {}),
        onStart: (k) => {
          keeper = k;
        },
      });
      while (!keeper) await new Promise((r) => setImmediate(r));
      await rig.run(keeper, 2 * MINUTE, 1000);
      assert.deepEqual((await keeper.calls()).map((s) => s.callId).sort(), [...expected].sort());
      assert.ok((await keeper.calls()).every((s) => s.state === 'ok' && s.lastSuccessAt > rig.clock.now() - 3 * MINUTE));
      abort.abort();
      assert.equal(await done, KEEP_EXIT.ok);
    }
    const tokenBodies = tokenProxy.seen
      .filter((s) => s.path.endsWith('/oauth2/v2.0/token'))
      .map((s) => new URLSearchParams(s.body).get('scope'));
    assert.ok(tokenBodies.length >= 2 && tokenBodies.every((x) => x === 'https://graph.microsoft.com/.default'), String(tokenBodies));
  } finally {
    await tokenProxy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('keep: bad arguments are explained', async () => {
  const io = { stdout: capture(false).stream, env: {} };
  await assert.rejects(keepCommand([], io), /name at least one call id/);
  await assert.rejects(keepCommand(['x'], io), /--tenant is required \(or set AZURE_TENANT_ID\)/);
  await assert.rejects(
    keepCommand(['x', '--tenant', 't', '--client-id', 'c', '--client-secret', 's', '--interval', 'soon'], io),
    /--interval: 'soon' is not a duration/,
  );
  await assert.rejects(
    keepCommand(['x', '--tenant', 't', '--client-id', 'c', '--client-secret', 's', '--interval', '50m'], io),
    /interval .* must be shorter than timeout/,
  );
  await assert.rejects(keepCommand(['x', '--bogus'], io), /Unknown option '--bogus'/);
  await assert.rejects(
    keepCommand(['x', '--tenant', 't', '--client-id', 'c', '--client-secret', 's', '--interval', '15'], io),
    /--interval: '15' has no unit; write it with one: 15m, 15s or 15ms/,
  );
  await assert.rejects(
    keepCommand(['x', '--tenant', 't', '--client-id', 'c', '--client-secret', 's', '--timeout', '2700000'], io),
    /--timeout: '2700000' has no unit/,
  );
  await assert.rejects(keepCommand(['--ids-from', '/nonexistent/ids.txt'], io), /--ids-from \/nonexistent\/ids.txt: no such file/);
  await assert.rejects(
    keepCommand(['--ids-from', '-'], { ...io, stdin: Readable.from(['# nothing\n']) }),
    /name at least one call id \(stdin held none\)/,
  );
  const help = capture(false);
  await keepCommand(['--help'], { stdout: help.stream });
  assert.equal(help.text(), KEEP_HELP);
  for (const [name, code] of Object.entries(KEEP_EXIT))
    assert.match(KEEP_HELP, new RegExp(`\\n  ${code}  `), `exit code ${name} in --help`);
});

test('keep --redis: replicas share the calls one of them tracked (the other named none), each sent by one; stopping one hands its calls over at once', async () => {
  const ids = await rig.createCalls(40);
  const dir = mkdtempSync(join(tmpdir(), 'keep-ids-'));
  const file = join(dir, 'ids.txt');
  writeFileSync(file, `${ids.join('\n')}\n`);
  const proxies = [await FaultProxy.start(rig.base, rig.clock), await FaultProxy.start(rig.base, rig.clock)];
  const started: KeepAlive[] = [];
  const runs: { out: ReturnType<typeof capture>; abort: AbortController; done: Promise<number> }[] = [];
  try {
    for (const [i, extra] of [['--ids-from', file], []].entries()) {
      const out = capture(false);
      const abort = new AbortController();
      const argv = [
        ...extra,
        ...args().map((x) => (x === rig.graph ? `${proxies[i]?.url}/v1.0` : x)),
        '--redis',
        `${redis.url}/3`,
        '--namespace',
        'keep-cli',
        '--lease-ttl',
        '40s',
        '--replica-id',
        `r${i}`,
      ];
      const done = keepCommand(argv, {
        stdout: out.stream,
        clock: rig.clock,
        env: {},
        signal: abort.signal,
        onStart: (k) => started.push(k),
      });
      runs.push({ out, abort, done });
    }
    while (started.length < 2) await new Promise((r) => setImmediate(r));
    // Started in either order (r0 reads its file first): tell them by name.
    const a = started.find((k) => k.replicaId === 'r0') as KeepAlive;
    const b = started.find((k) => k.replicaId === 'r1') as KeepAlive;
    const settle = async (ms: number, step = 5000) => {
      for (let t = 0; t < ms; t += step) {
        rig.clock.advance(step);
        for (let i = 0; i < 2; i++) {
          await Promise.all([a.whenIdle(), b.whenIdle()]);
          await new Promise((r) => setImmediate(r));
        }
        await rig.ck.scheduler.idle();
      }
    };
    await settle(60 * MINUTE);
    assert.equal(a.size + b.size, 40, 'every call held once');
    assert.ok(a.size >= 10 && b.size >= 10, `spread: ${a.size} and ${b.size}`);
    for (const id of ids) {
      assert.equal((await rig.ck.store.get(id))?.state, 'established', `${id} is up an hour later`);
      const senders = proxies.filter((p) => p.keepAlivesOf(id).some((s) => s.at > rig.clock.now() - 30 * MINUTE)).length;
      assert.equal(senders, 1, `${id}: sent by one replica`);
    }
    // An ended call does not stop a fleet replica (others may track more).
    await (await request(`${rig.base}/_callkeeper/calls/${ids[0]}/expire`, { method: 'POST' })).body.dump();
    await settle(16 * MINUTE);
    assert.equal(a.size + b.size, 39);
    // Stopping r0 (Ctrl-C, SIGTERM) hands its calls to r1 before any virtual time passes.
    const at = rig.clock.now();
    runs[0]?.abort.abort();
    assert.equal(await runs[0]?.done, KEEP_EXIT.ok);
    const deadline = Date.now() + 60_000;
    while (b.size < 39) {
      assert.ok(Date.now() < deadline, `r1 holds ${b.size} of 39 calls a minute after r0 stopped`);
      await b.whenIdle();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(rig.clock.now(), at);
    runs[1]?.abort.abort();
    assert.equal(await runs[1]?.done, KEEP_EXIT.ok);
    const first = runs[0]?.out.text() ?? '';
    assert.match(first, /^callkeeper keep: replica r0 of fleet keep-cli on Redis, tracking 40 calls, at http/);
    assert.match(first, /replica r0: holds \d+ calls \(took \d+, handed over \d+\); 2 replicas live/);
    assert.match(runs[1]?.out.text() ?? '', /^callkeeper keep: replica r1 of fleet keep-cli on Redis, at http/);
    assert.match(runs[1]?.out.text() ?? '', /replica r1: holds 39 calls \(took \d+, handed over 0\); 1 replicas live/);
  } finally {
    for (const r of runs) r.abort.abort();
    await Promise.all(runs.map((r) => r.done.catch(() => undefined)));
    for (const p of proxies) await p.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('keep --redis: a Redis that does not answer is exit code 4 at once; shared flags need --redis; a bad URL is explained', async () => {
  const creds = ['--tenant', 't', '--client-id', 'c', '--client-secret', 's'];
  const out = capture(false);
  const port = await freePort();
  const code = await keepCommand([...creds, '--redis', `redis://127.0.0.1:${port}`], { stdout: out.stream, env: {} });
  assert.equal(code, KEEP_EXIT.redis);
  assert.match(out.text(), new RegExp(`callkeeper keep: --redis: cannot reach Redis at 127\\.0\\.0\\.1:${port}`));
  const io = { stdout: capture(false).stream, env: {} };
  await assert.rejects(keepCommand(['x', ...creds, '--namespace', 'n'], io), /--namespace is for shared keeping: add --redis <url>/);
  await assert.rejects(keepCommand([...creds], io), /name at least one call id/, 'without --redis ids are needed');
  await assert.rejects(keepCommand([...creds, '--redis', 'http://127.0.0.1:6379'], io), /--redis: http: is not a Redis URL/);
  await assert.rejects(keepCommand([...creds, '--redis', 'redis://x', '--lease-ttl', '60'], io), /--lease-ttl: '60' has no unit/);
});
