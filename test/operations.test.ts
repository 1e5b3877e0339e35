import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { callBody, type GraphErrorBody, startServer, type TestServer } from './helpers.js';
import { Receiver } from './receiver.js';

interface Operation {
  '@odata.type': string;
  id: string;
  status: string;
  clientContext: string | null;
  resultInfo?: { code: number; subcode: number; message: string };
  recordingLocation?: string | null;
  recordingAccessToken?: string | null;
}

const PROMPT = { '@odata.type': '#microsoft.graph.mediaPrompt', mediaInfo: { uri: 'https://cdn.contoso.com/beep.wav', resourceId: 'r1' } };

describe('operations: the commsOperation life cycle in virtual time', () => {
  let s: TestServer;
  let bot: Receiver;
  before(async () => {
    s = await startServer();
    bot = await new Receiver().start();
  });
  after(async () => {
    await s.close();
    await bot.stop();
  });

  const post = (callId: string, action: string, body?: unknown) =>
    s.graph(`/v1.0/communications/calls/${callId}/${action}`, {
      method: 'POST',
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
  const control = (path: string, body: unknown = {}) =>
    fetch(`${s.base}/_callkeeper${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  async function establishedCall(overrides: Record<string, unknown> = {}): Promise<string> {
    const id = await s.createCall(callBody({ callbackUri: bot.url, ...overrides }));
    await s.advance(1_000);
    return id;
  }

  /** Completion notifications of one operation, as the bot received them. */
  async function completions(callId: string, opId: string): Promise<Operation[]> {
    await s.ck.notifier.flush();
    return bot.received
      .flatMap((r) => r.body.value)
      .filter((n) => n.resourceUrl === `/communications/calls/${callId}/operations/${opId}`)
      .map((n) => {
        assert.equal(n.changeType, 'deleted');
        return n.resourceData as unknown as Operation;
      });
  }

  const errorOf = async (res: Response) => ((await res.json()) as GraphErrorBody).error;

  test('playPrompt: 200 with Location and a running operation; completes after the prompt plays, with clientContext', async () => {
    const id = await establishedCall();
    const res = await post(id, 'playPrompt', { clientContext: 'ctx-1', prompts: [PROMPT, PROMPT] });
    assert.equal(res.status, 200);
    const op = (await res.json()) as Operation;
    assert.equal(op['@odata.type'], '#microsoft.graph.playPromptOperation');
    assert.equal(op.status, 'Running');
    assert.equal(op.clientContext, 'ctx-1');
    assert.equal(res.headers.get('location'), `${s.base}/v1.0/communications/calls/${id}/operations/${op.id}`);
    await s.advance(5_999); // two prompts of 3 s each
    assert.deepEqual(await completions(id, op.id), []);
    const got = (await (await s.graph(`/v1.0/communications/calls/${id}/operations/${op.id}`)).json()) as Operation;
    assert.equal(got.status, 'Running');
    await s.advance(1);
    const [done] = await completions(id, op.id);
    assert.equal(done?.status, 'completed');
    assert.equal(done?.clientContext, 'ctx-1');
    assert.deepEqual(done?.resultInfo, {
      '@odata.type': '#microsoft.graph.resultInfo',
      code: 200,
      subcode: 0,
      message: 'Action completed successfully.',
    });
    const after = (await (await s.graph(`/v1.0/communications/calls/${id}/operations/${op.id}`)).json()) as Operation;
    assert.equal(after.status, 'Completed');
  });

  test('media operations queue: a second prompt finishes after the first', async () => {
    const id = await establishedCall();
    const first = (await (await post(id, 'playPrompt', { prompts: [PROMPT] })).json()) as Operation;
    const second = (await (await post(id, 'playPrompt', { prompts: [PROMPT] })).json()) as Operation;
    await s.advance(3_000);
    assert.equal((await completions(id, first.id)).length, 1);
    assert.equal((await completions(id, second.id)).length, 0);
    await s.advance(3_000);
    assert.equal((await completions(id, second.id)).length, 1);
  });

  for (const [name, body, message] of [
    ['no body', undefined, /required/],
    ['no prompts', { clientContext: 'c' }, /'prompts' is required/],
    ['empty prompts', { prompts: [] }, /at least one/],
    ['21 prompts', { prompts: Array(21).fill(PROMPT) }, /at most 20/],
    ['a prompt without uri', { prompts: [{ '@odata.type': '#microsoft.graph.mediaPrompt', mediaInfo: {} }] }, /mediaInfo.uri' is required/],
    ['a relative uri', { prompts: [{ mediaInfo: { uri: 'beep.wav' } }] }, /absolute URL/],
    ['a long clientContext', { prompts: [PROMPT], clientContext: 'x'.repeat(257) }, /maximum of 256/],
    ['an unknown property', { prompts: [PROMPT], loop: true }, /'loop' does not exist/],
  ] as const) {
    test(`playPrompt with ${name}: 400 BadRequest naming the property`, async () => {
      const id = await establishedCall();
      const res = await post(id, 'playPrompt', body);
      assert.equal(res.status, 400);
      const e = await errorOf(res);
      assert.equal(e.code, 'BadRequest');
      assert.match(e.message, message);
    });
  }

  test('cancelMediaProcessing fails running prompts and recordings as canceled (400/8508)', async () => {
    const id = await establishedCall();
    const prompt = (await (await post(id, 'playPrompt', { prompts: [PROMPT], clientContext: 'p' })).json()) as Operation;
    const rec = (await (await post(id, 'recordResponse', { clientContext: 'r' })).json()) as Operation;
    await s.advance(1_000);
    const res = await post(id, 'cancelMediaProcessing', { clientContext: 'cancel' });
    assert.equal(res.status, 200);
    const cancel = (await res.json()) as Operation;
    assert.equal(cancel['@odata.type'], '#microsoft.graph.cancelMediaProcessingOperation');
    for (const [op, ctx] of [
      [prompt, 'p'],
      [rec, 'r'],
    ] as const) {
      const [done] = await completions(id, op.id);
      assert.equal(done?.status, 'failed');
      assert.equal(done?.clientContext, ctx);
      assert.equal(done?.resultInfo?.subcode, 8508);
    }
    // Nothing completes them again later.
    await s.advance(60_000);
    assert.equal((await completions(id, prompt.id)).length, 1);
    assert.equal((await completions(id, cancel.id)).length, 1);
  });

  test('recordResponse ends at its max duration and yields a WAV fetchable only with its recordingAccessToken', async () => {
    const id = await establishedCall();
    const res = await post(id, 'recordResponse', { maxRecordDurationInSeconds: 4, playBeep: false, clientContext: 'rec' });
    assert.equal(res.status, 200);
    const op = (await res.json()) as Operation;
    assert.equal(op['@odata.type'], '#microsoft.graph.recordOperation');
    assert.equal(op.recordingLocation, null);
    await s.advance(4_000);
    const [done] = await completions(id, op.id);
    assert.equal(done?.status, 'completed');
    assert.equal(done?.resultInfo?.subcode, 8515);
    assert.ok(done?.recordingLocation && done.recordingAccessToken);
    const denied = await fetch(done.recordingLocation);
    assert.equal(denied.status, 401);
    const wrong = await fetch(done.recordingLocation, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    const file = await fetch(done.recordingLocation, { headers: { authorization: `Bearer ${done.recordingAccessToken}` } });
    assert.equal(file.status, 200);
    const wav = Buffer.from(await file.arrayBuffer());
    assert.equal(wav.toString('ascii', 0, 4), 'RIFF');
    assert.equal(wav.toString('ascii', 8, 12), 'WAVE');
    const rate = wav.readUInt32LE(24);
    const seconds = wav.readUInt32LE(40) / (rate * 2);
    assert.equal(seconds, 4);
  });

  test('recordResponse ends on a stop tone, and on silence', async () => {
    const id = await establishedCall();
    const byTone = (await (
      await post(id, 'recordResponse', { stopTones: ['#'], playBeep: false, maxRecordDurationInSeconds: 60 })
    ).json()) as Operation;
    await s.advance(2_000);
    assert.equal((await control(`/calls/${id}/tones`, { tones: '1#' })).status, 200);
    const [stopped] = await completions(id, byTone.id);
    assert.equal(stopped?.resultInfo?.subcode, 8514);
    const bySilence = (await (
      await post(id, 'recordResponse', { maxSilenceTimeoutInSeconds: 2, playBeep: false, maxRecordDurationInSeconds: 60 })
    ).json()) as Operation;
    await s.advance(1_000);
    assert.equal((await control(`/calls/${id}/silence`)).status, 200);
    await s.advance(1_999);
    assert.equal((await completions(id, bySilence.id)).length, 0);
    await s.advance(1);
    const [silent] = await completions(id, bySilence.id);
    assert.equal(silent?.resultInfo?.subcode, 8511);
    const wav = await fetch(silent?.recordingLocation ?? '', { headers: { authorization: `Bearer ${silent?.recordingAccessToken}` } });
    const buf = Buffer.from(await wav.arrayBuffer());
    assert.equal(buf.readUInt32LE(40) / (buf.readUInt32LE(24) * 2), 3);
  });

  test('operations on an ended call are 404 8522; an unknown operation is 404', async () => {
    const id = await establishedCall();
    const op = (await (await post(id, 'playPrompt', { prompts: [PROMPT] })).json()) as Operation;
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}/operations/nope`)).status, 404);
    assert.equal((await s.graph(`/v1.0/communications/calls/${id}`, { method: 'DELETE' })).status, 204);
    for (const [action, body] of [
      ['playPrompt', { prompts: [PROMPT] }],
      ['recordResponse', {}],
      ['subscribeToTone', {}],
      ['mute', {}],
      ['unmute', {}],
      ['updateRecordingStatus', { status: 'recording' }],
      ['cancelMediaProcessing', {}],
      ['changeScreenSharingRole', { role: 'sharer' }],
      ['transfer', { transferTarget: { identity: { user: { id: 'u2' } } } }],
      ['participants/invite', { participants: [{ identity: { user: { id: 'u2' } } }] }],
    ] as const) {
      const res = await post(id, action, body);
      assert.equal(res.status, 404, action);
      assert.equal((await errorOf(res)).code, '8522', action);
    }
    const gone = await s.graph(`/v1.0/communications/calls/${id}/operations/${op.id}`);
    assert.equal(gone.status, 404);
    // The prompt never completes for a call that ended.
    await s.advance(10_000);
    assert.deepEqual(await completions(id, op.id), []);
  });

  test('media operations need service-hosted media; every operation needs an established call', async () => {
    const appHosted = await establishedCall({
      mediaConfig: { '@odata.type': '#microsoft.graph.appHostedMediaConfig', blob: '<blob>' },
    });
    for (const action of ['playPrompt', 'recordResponse', 'subscribeToTone', 'cancelMediaProcessing']) {
      const res = await post(appHosted, action, action === 'playPrompt' ? { prompts: [PROMPT] } : {});
      assert.equal(res.status, 400, action);
      assert.match((await errorOf(res)).message, /serviceHostedMediaConfig/);
    }
    assert.equal((await post(appHosted, 'mute', {})).status, 200);
    const establishing = await s.createCall(callBody({ callbackUri: bot.url }));
    const res = await post(establishing, 'playPrompt', { prompts: [PROMPT] });
    assert.equal(res.status, 400);
    assert.match((await errorOf(res)).message, /state 'establishing'/);
  });
});
