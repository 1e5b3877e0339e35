import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { startTlsServer } from './helpers.js';
import { testModuleArgs } from './paths.js';
import { Receiver } from './receiver.js';
import type { PromptFlowResult } from './sdk-flows/operation-flows.js';

const run = promisify(execFile);
const RUNNER = testModuleArgs('sdk-flows/run-flow.ts');

async function runFlow(flow: 'graph-client-prompt' | 'kiota-prompt', env: Record<string, string>): Promise<PromptFlowResult> {
  try {
    const { stdout } = await run(process.execPath, [...RUNNER, flow], { env: { ...process.env, ...env }, timeout: 60_000 });
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as PromptFlowResult;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string };
    throw new Error(`${flow} flow failed:\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

describe('the official packages run an operation flow (playPrompt) over https, unmodified', () => {
  let s: Awaited<ReturnType<typeof startTlsServer>>;
  let bot: Receiver;
  before(async () => {
    s = await startTlsServer();
    bot = await new Receiver().start();
  });
  after(async () => {
    await s.close();
    await bot.stop();
  });

  const env = () => ({
    NODE_EXTRA_CA_CERTS: s.caPath,
    CK_FLOW_GRAPH_URL: `${s.https}/v1.0`,
    CK_FLOW_AUTHORITY: s.https,
    CK_FLOW_RESOURCE: 'https://graph.microsoft.com',
    CK_FLOW_TENANT: DEFAULT_APP.tenantId,
    CK_FLOW_CLIENT_ID: DEFAULT_APP.clientId,
    CK_FLOW_CLIENT_SECRET: DEFAULT_APP.clientSecret,
    CK_FLOW_CALLBACK_URI: bot.url,
    CK_FLOW_TARGET_USER: '8d4d8ca3-0000-4000-8000-000000000001',
    CK_FLOW_CONTROL_URL: `${s.base}/_callkeeper`,
  });

  async function assertFlow(r: PromptFlowResult, clientContext: string): Promise<void> {
    assert.equal(r.operationType, '#microsoft.graph.playPromptOperation');
    assert.equal(r.startedStatus, 'Running');
    assert.equal(r.clientContext, clientContext);
    assert.equal(r.finishedStatus, 'Completed');
    assert.equal(r.resultCode, 200);
    assert.equal(r.afterEndStatus, 404);
    assert.equal(r.afterEndCode, '8522');
    const call = await s.ck.store.get(r.callId);
    assert.deepEqual(call?.resultInfo?.subcode, 7000, 'the SDK hung up');
    await s.ck.notifier.flush();
    const done = bot.received
      .flatMap((n) => n.body.value)
      .find((n) => n.resourceUrl === `/communications/calls/${r.callId}/operations/${r.operationId}`);
    assert.equal(done?.resourceData.status, 'completed', 'the bot was told');
  }

  test('@microsoft/microsoft-graph-client: playPrompt answers 200 with Location; the operation completes; 404 8522 once the call ended', async () => {
    const r = await runFlow('graph-client-prompt', env());
    assert.equal(r.locationMatches, true);
    await assertFlow(r, 'graph-client');
  });

  test('Kiota RequestInformation with @microsoft/msgraph-sdk models: the same flow, parsed into typed operations', async () => {
    await assertFlow(await runFlow('kiota-prompt', env()), 'kiota');
  });
});
