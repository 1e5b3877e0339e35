import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { startTlsServer } from './helpers.js';
import { testModuleArgs } from './paths.js';
import type { FlowResult } from './sdk-flows/flows.js';

const run = promisify(execFile);
const RUNNER = testModuleArgs('sdk-flows/run-flow.ts');

async function runFlow(flow: 'graph-client' | 'kiota', env: Record<string, string>): Promise<FlowResult> {
  try {
    const { stdout } = await run(process.execPath, [...RUNNER, flow], { env: { ...process.env, ...env }, timeout: 60_000 });
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as FlowResult;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string };
    throw new Error(`${flow} flow failed:\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

describe('the official packages drive callkeeper over https, unmodified', () => {
  let s: Awaited<ReturnType<typeof startTlsServer>>;
  let https: string;
  let caPath: string;
  before(async () => {
    s = await startTlsServer();
    ({ https, caPath } = s);
  });
  after(() => s.close());

  const envFor = (prefix: string, resource: string) => ({
    NODE_EXTRA_CA_CERTS: caPath,
    CK_FLOW_GRAPH_URL: `${https}${prefix}/v1.0`,
    CK_FLOW_AUTHORITY: `${https}${prefix}`,
    CK_FLOW_RESOURCE: resource,
    CK_FLOW_TENANT: DEFAULT_APP.tenantId,
    CK_FLOW_CLIENT_ID: DEFAULT_APP.clientId,
    CK_FLOW_CLIENT_SECRET: DEFAULT_APP.clientSecret,
    CK_FLOW_CALLBACK_URI: 'https://127.0.0.1:4/api/calls',
    CK_FLOW_TARGET_USER: '8d4d8ca3-0000-4000-8000-000000000001',
    CK_FLOW_CONTROL_URL: `${s.base}/_callkeeper`,
  });

  async function assertFlow(result: FlowResult): Promise<void> {
    assert.equal(result.createdState, 'establishing');
    assert.equal(result.keepAliveOk, true);
    assert.equal(result.endedBy, 'keepAlive timeout');
    assert.equal(result.afterEndStatus, 404);
    assert.equal(result.afterEndCode, '8522');
    const stored = await s.ck.store.get(result.callId);
    assert.ok(stored?.lastKeepAliveAt, 'the SDK keepAlive reached the call');
    assert.deepEqual(stored?.resultInfo, { code: 408, subcode: 8537, message: 'Keep Alive timeout, cleaned up inactive call.' });
  }

  test('@azure/identity + @microsoft/microsoft-graph-client 3.x: create, keepAlive, 45 minutes, GraphError 404 8522', async () => {
    await assertFlow(await runFlow('graph-client', envFor('', 'https://graph.microsoft.com')));
  });

  test('@azure/identity + Kiota GraphRequestAdapter (@microsoft/msgraph-sdk): the same flow, errors as ODataError', async () => {
    await assertFlow(await runFlow('kiota', envFor('', 'https://graph.microsoft.com')));
  });

  test('the graph-client flow in a national cloud (US Government L4, under /usgov)', async () => {
    await assertFlow(await runFlow('graph-client', envFor('/usgov', 'https://graph.microsoft.us')));
  });
});

describe('live mode', () => {
  const live = ['TENANT', 'CLIENT_ID', 'CLIENT_SECRET', 'GRAPH_URL', 'AUTHORITY', 'CALLBACK_URI', 'TARGET_USER'].map(
    (k) => `CALLKEEPER_LIVE_${k}`,
  );
  const missing = live.filter((k) => !process.env[k]);
  const reason = missing.length ? `live Graph flow skipped: set ${missing.join(', ')} to run it against a real tenant` : undefined;
  if (reason) process.stdout.write(`# ${reason}\n`);
  test('the graph-client flow against the endpoint named by CALLKEEPER_LIVE_*', { skip: reason ?? false }, async () => {
    const v = (k: string) => process.env[`CALLKEEPER_LIVE_${k}`] ?? '';
    const graphUrl = v('GRAPH_URL');
    const result = await runFlow('graph-client', {
      CK_FLOW_GRAPH_URL: graphUrl,
      CK_FLOW_AUTHORITY: v('AUTHORITY'),
      CK_FLOW_RESOURCE: new URL(graphUrl).origin,
      CK_FLOW_TENANT: v('TENANT'),
      CK_FLOW_CLIENT_ID: v('CLIENT_ID'),
      CK_FLOW_CLIENT_SECRET: v('CLIENT_SECRET'),
      CK_FLOW_CALLBACK_URI: v('CALLBACK_URI'),
      CK_FLOW_TARGET_USER: v('TARGET_USER'),
    });
    assert.equal(result.endedBy, 'hang-up');
    assert.equal(result.afterEndStatus, 404);
  });
});
