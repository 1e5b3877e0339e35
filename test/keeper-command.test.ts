/** `callkeeper keep` (keepCommand) against a real callkeeper server, on virtual time. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { DEFAULT_APP } from '../src/auth/apps.js';
import type { KeepAlive } from '../src/keeper/keep-alive.js';
import { KEEP_HELP, keepCommand } from '../src/keeper/keep-command.js';
import { MINUTE, type Rig, startRig } from './keeper-harness.test.js';

let rig: Rig;
before(async () => {
  rig = await startRig();
});
after(() => rig.close());

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

test('keep: credentials from the environment; failures and retries are shown', async () => {
  const [id] = await rig.createCalls(1);
  assert.ok(id);
  const out = capture(false);
  const abort = new AbortController();
  let keeper: KeepAlive | undefined;
  const done = keepCommand([id, '--base-url', `${rig.base}/v1.0`, '--authority', rig.base, '--interval', '1m'], {
    stdout: out.stream,
    clock: rig.clock,
    env: { AZURE_TENANT_ID: DEFAULT_APP.tenantId, AZURE_CLIENT_ID: DEFAULT_APP.clientId, AZURE_CLIENT_SECRET: 'wrong secret' },
    signal: abort.signal,
    onStart: (k) => {
      keeper = k;
    },
  });
  assert.ok(keeper);
  await rig.run(keeper, 2 * MINUTE, 1000);
  abort.abort();
  await done;
  assert.match(
    out.text(),
    /keepAlive failed \(token request to http:\/\/127\.0\.0\.1:\d+\/\S+ failed with HTTP 401 \(invalid_client: [^)]*\)\), retry in \d+s/,
  );
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
  const help = capture(false);
  await keepCommand(['--help'], { stdout: help.stream });
  assert.equal(help.text(), KEEP_HELP);
});
