/**
 * Tokens live on the wall clock (docs/decisions.md, "Time of tokens"): the official clients
 * cache a token by their own clock and `expires_in`, so 10 virtual hours must not expire it,
 * whether the virtual clock is moved by hand (ManualClock) or runs 6000 times faster than real
 * time (`serve --time-scale 6000`: 10 virtual hours in 6 s; a token aging with virtual time
 * would expire after 0.6 s).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ClientSecretCredential } from '@azure/identity';
import { Agent } from 'undici';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { ScaledClock } from '../src/clock/clock.js';
import { KeepAlive } from '../src/keeper/keep-alive.js';
import type { AttemptFailedEvent, SentEvent } from '../src/keeper/keep-alive-events.js';
import { spawnServe } from './cli-process.js';
import { callBody, MINUTE, startTlsServer, tempDir } from './helpers.js';
import { testModuleArgs } from './paths.js';
import type { HoursResult } from './sdk-flows/flows.js';

const run = promisify(execFile);
const RUNNER = testModuleArgs('sdk-flows/run-flow.ts');
const HOURS = 10;
const ROUNDS = HOURS * 4;

/** The Graph JS client + ClientSecretCredential in a process of their own, as a bot runs them. */
async function runHoursFlow(https: string, caPath: string, control: string, wait: boolean): Promise<HoursResult> {
  const env = {
    ...process.env,
    NODE_EXTRA_CA_CERTS: caPath,
    CK_FLOW_GRAPH_URL: `${https}/v1.0`,
    CK_FLOW_AUTHORITY: https,
    CK_FLOW_RESOURCE: 'https://graph.microsoft.com',
    CK_FLOW_TENANT: DEFAULT_APP.tenantId,
    CK_FLOW_CLIENT_ID: DEFAULT_APP.clientId,
    CK_FLOW_CLIENT_SECRET: DEFAULT_APP.clientSecret,
    CK_FLOW_CALLBACK_URI: 'https://127.0.0.1:4/api/calls',
    CK_FLOW_TARGET_USER: '8d4d8ca3-0000-4000-8000-000000000001',
    CK_FLOW_CONTROL_URL: control,
    CK_FLOW_HOURS: String(HOURS),
    ...(wait ? { CK_FLOW_WAIT: '1' } : {}),
  };
  try {
    const { stdout } = await run(process.execPath, [...RUNNER, 'graph-client-hours'], { env, timeout: 180_000 });
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as HoursResult;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string };
    throw new Error(`graph-client-hours flow failed:\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

/** A ClientSecretCredential (MSAL inside) against callkeeper's authority, trusting its CA. */
function credential(https: string, ca: string): ClientSecretCredential {
  return new ClientSecretCredential(DEFAULT_APP.tenantId, DEFAULT_APP.clientId, DEFAULT_APP.clientSecret, {
    authorityHost: https,
    disableInstanceDiscovery: true,
    tlsOptions: { ca },
  });
}

describe('10 virtual hours with one token on a ManualClock', () => {
  test('@azure/identity + @microsoft/microsoft-graph-client: a keepAlive every 15 minutes, no 401, the call alive', async () => {
    const s = await startTlsServer();
    try {
      const result = await runHoursFlow(s.https, s.caPath, `${s.base}/_callkeeper`, false);
      assert.deepEqual(result.failures, []);
      assert.equal(result.keepAlives, ROUNDS);
      assert.equal(result.finalState, 'established');
      const stored = await s.ck.store.get(result.callId);
      assert.equal(stored?.state, 'established');
      assert.ok(s.clock.now() - (stored?.createdAt ?? 0) >= HOURS * 60 * MINUTE, 'ten virtual hours passed');
    } finally {
      await s.close();
    }
  });

  test('the KeepAlive runtime driven by a ClientSecretCredential: 40 keepAlives, no 401, the call alive', async () => {
    const s = await startTlsServer();
    const ca = readFileSync(s.caPath, 'utf8');
    const dispatcher = new Agent({ connect: { ca } });
    const keeper = new KeepAlive({
      baseUrl: `${s.https}/v1.0`,
      credential: credential(s.https, ca),
      clock: s.clock,
      dispatcher,
    });
    try {
      const id = await s.createCall();
      const sent: SentEvent[] = [];
      const failed: AttemptFailedEvent[] = [];
      keeper.on('sent', (e) => sent.push(e));
      keeper.on('attemptFailed', (e) => failed.push(e));
      keeper.track(id);
      for (let i = 0; i < ROUNDS; i++) {
        await s.advance(15 * MINUTE);
        await keeper.whenIdle();
      }
      assert.deepEqual(
        failed.map((f) => `${f.status} ${f.code} ${f.error?.message ?? ''}`),
        [],
      );
      assert.equal(sent.length, ROUNDS);
      assert.equal((await s.ck.store.get(id))?.state, 'established');
      assert.equal(keeper.has(id), true);
    } finally {
      await keeper.close();
      await dispatcher.close();
      await s.close();
    }
  });
});

const SCALE = 6000;

describe(`10 virtual hours with one token on serve --time-scale ${SCALE} (6 s of real time)`, () => {
  test('the Graph JS client and the KeepAlive runtime, side by side: no 401, both calls alive', { timeout: 240_000 }, async () => {
    const dir = tempDir();
    // At 6000x, Graph's 45 minutes are 0.45 s of real time: a loaded machine stalling a process
    // that long would end a call for reasons that have nothing to do with tokens. A 1-day
    // timeout keeps the test about tokens: what it checks is that every keepAlive (one every 15
    // virtual minutes, 40 per client) is answered, not 401; the ManualClock tests above show the
    // keepAlives keeping calls alive.
    const p = await spawnServe(['--memory', '--time-scale', String(SCALE), '--keepalive-timeout', '1d', '--tls-dir', dir.path]);
    const https = p.tlsBase ?? '';
    const ca = readFileSync(p.caPath ?? '', 'utf8');
    const dispatcher = new Agent({ connect: { ca } });
    const clock = new ScaledClock(SCALE);
    const keeper = new KeepAlive({
      baseUrl: `${https}/v1.0`,
      credential: credential(https, ca),
      clock,
      dispatcher,
      timeout: 24 * 60 * MINUTE,
    });
    try {
      // The keeper's call, created with a token from the same credential.
      const token = (await credential(https, ca).getToken('https://graph.microsoft.com/.default'))?.token ?? '';
      const created = await fetch(`${p.base}/v1.0/communications/calls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(callBody()),
      });
      assert.equal(created.status, 201);
      const keeperCall = ((await created.json()) as { id: string }).id;
      const sent: SentEvent[] = [];
      const failed: AttemptFailedEvent[] = [];
      keeper.on('sent', (e) => sent.push(e));
      keeper.on('attemptFailed', (e) => failed.push(e));
      const enough = new Promise<void>((resolve) =>
        keeper.on('sent', () => {
          if (sent.length >= ROUNDS) resolve();
        }),
      );
      keeper.track(keeperCall);

      const [flow] = await Promise.all([runHoursFlow(https, p.caPath ?? '', `${p.base}/_callkeeper`, true), enough]);
      assert.deepEqual(flow.failures, []);
      assert.equal(flow.finalState, 'established');
      assert.deepEqual(
        failed.map((f) => `${f.status} ${f.code} ${f.error?.message ?? ''}`),
        [],
      );
      for (const id of [flow.callId, keeperCall]) {
        const state = ((await (await fetch(`${p.base}/_callkeeper/calls/${id}`)).json()) as { state: string }).state;
        assert.equal(state, 'established', id);
      }
    } finally {
      await keeper.close();
      await dispatcher.close();
      p.child.kill('SIGTERM');
      await p.exited;
      dir.remove();
    }
  });
});
