/**
 * The dashboard in a real headless Chromium (playwright-core driving Debian's chromium): a
 * created call appears, its countdown moves, "+45 min" from the page ends it and the page
 * shows 408/8537; with a control token, the page sends it as a header, never in a URL.
 * Screenshots go to docs/.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { DEFAULT_APP } from '../src/auth/apps.js';
import { type Callkeeper, createCallkeeper } from '../src/server.js';
import { callBody, fetchToken, OTHER_APP } from './helpers.js';
import { ROOT } from './paths.js';
import { Receiver } from './receiver.js';
import { suiteKeys } from './suite-keys.js';

/**
 * Polls the page through playwright's selector engine until `check` holds (generous, for a
 * loaded machine). waitForFunction would evaluate strings in the page, which the dashboard's
 * Content-Security-Policy (no unsafe-eval) rightly forbids.
 */
async function until(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// The README's screenshots are refreshed only when asked (CALLKEEPER_SCREENSHOTS=docs), so a
// test run leaves the clone as it found it; otherwise they go to a temporary directory.
const SHOTS = process.env.CALLKEEPER_SCREENSHOTS === 'docs' ? `${ROOT}docs/` : mkdtempSync(join(tmpdir(), 'ck-shots-'));
const shot = (name: string): string => join(SHOTS, name);
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

async function openBrowser(): Promise<{ context: BrowserContext; page: Page; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'callkeeper-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: ARGS,
    headless: true,
    viewport: { width: 1280, height: 720 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

async function createCall(base: string, token: string, callbackUri: string): Promise<string> {
  const res = await fetch(`${base}/v1.0/communications/calls`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(callBody({ callbackUri })),
  });
  assert.equal(res.status, 201);
  return ((await res.json()) as { id: string }).id;
}

describe('dashboard in headless Chromium', () => {
  let ck: Callkeeper;
  let base: string;
  let bot: Receiver;
  let browser: Awaited<ReturnType<typeof openBrowser>>;
  before(async () => {
    bot = await new Receiver().start();
    // Real time (scale 1): the countdown has to move by itself.
    ck = await createCallkeeper({ logger: false, apps: [DEFAULT_APP, OTHER_APP], ...suiteKeys() });
    base = await ck.listen('127.0.0.1', 0);
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
    await ck?.close();
    await bot?.stop();
    if (process.env.CALLKEEPER_SCREENSHOTS !== 'docs') rmSync(SHOTS, { recursive: true, force: true });
  });

  test('shows a created call, its countdown moves, +45 min ends it and the page shows 408/8537', async () => {
    const { page } = browser;
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/`);
    await page.waitForSelector('#calls tbody tr');
    const id = await createCall(base, await fetchToken(base), bot.url);
    const row = page.locator(`tr[data-call-id="${id}"]`);
    await row.waitFor({ timeout: 20_000 });
    const countdown = row.locator('td.countdown');
    const first = await countdown.textContent();
    assert.match(first ?? '', /^4[45]:\d\d$/, `a fresh call has 45 minutes: ${first}`);
    await until(async () => (await countdown.textContent()) !== first);
    const later = await countdown.textContent();
    assert.ok((later ?? '') < (first ?? ''), `the countdown went down: ${first} -> ${later}`);
    await row.click();
    await page.waitForSelector('#notifications tbody td:text("establishing")', { timeout: 20_000 });
    await page.screenshot({ path: shot('dashboard-live-call.png') });

    await page.click('button[data-advance="2700000"]');
    await until(async () => (await row.locator('td.result').textContent()) === '408/8537');
    assert.equal(await row.locator('td.state').textContent(), 'terminated');
    assert.equal(await row.locator('td.result').getAttribute('title'), 'Keep Alive timeout, cleaned up inactive call.');
    await page.waitForSelector('#events:text("408/8537")', { timeout: 20_000 });
    // The event log shows the server's (virtual) time, 45 minutes ahead of the browser's clock now.
    const ended = ((await page.locator('#events').textContent()) ?? '').split('\n').find((l) => l.includes('408/8537')) ?? '';
    const serverNow = ((await (await fetch(`${base}/_callkeeper/clock`)).json()) as { epochMs: number }).epochMs;
    const seconds = (hms: string) => hms.split(':').reduce((a, b) => a * 60 + Number(b), 0);
    const apart = Math.abs(seconds(ended.slice(0, 8)) - seconds(new Date(serverNow).toISOString().slice(11, 19)));
    assert.ok(Math.min(apart, 86_400 - apart) <= 60, `the event line carries the server's time: ${ended}`);
    await page.screenshot({ path: shot('dashboard-ended-call.png') });
    assert.deepEqual(errors, []);
  });

  test('fault rules are added and removed from the page', async () => {
    const { page } = browser;
    await page.fill('#fault-json', '{"match": {"callId": "from-the-page"}, "effect": {"status": 429, "retryAfter": 5}, "count": 2}');
    await page.click('#add-fault button[type=submit]');
    await page.waitForSelector('#faults button[data-remove-fault]');
    const rules = (await (await fetch(`${base}/_callkeeper/faults`)).json()) as { value: { id: string; match: { callId: string } }[] };
    assert.deepEqual(
      rules.value.map((r) => r.match.callId),
      ['from-the-page'],
    );
    await page.fill('#fault-json', '{"effect": {"status": 418}}');
    await page.click('#add-fault button[type=submit]');
    await page.waitForSelector('#fault-error:text("effect.status")');
    await page.click(`button[data-remove-fault="${rules.value[0]?.id}"]`);
    await page.waitForSelector('#faults td:text("none")');
    assert.deepEqual(await (await fetch(`${base}/_callkeeper/faults`)).json(), { value: [] });
  });
});

describe('dashboard with a control token', () => {
  test('the page loads without it, then sends it in a header, never in a URL', async () => {
    const bot = await new Receiver().start();
    const ck = await createCallkeeper({ logger: false, controlToken: 'open-sesame', ...suiteKeys() });
    const base = await ck.listen('127.0.0.1', 0);
    const browser = await openBrowser();
    try {
      const { page } = browser;
      const seen: { url: string; token: string | undefined }[] = [];
      page.on('request', (r) => seen.push({ url: r.url(), token: r.headers()['x-callkeeper-control-token'] }));
      await page.goto(`${base}/_callkeeper/ui`);
      await page.waitForSelector('#status.error');
      assert.match((await page.textContent('#status')) ?? '', /x-callkeeper-control-token/);
      const id = await createCall(base, await fetchToken(base), bot.url);
      await page.fill('#token', 'open-sesame');
      await page.press('#token', 'Enter');
      await page.dispatchEvent('#token', 'change');
      await page.waitForSelector(`tr[data-call-id="${id}"]`, { timeout: 20_000 });
      assert.ok(
        seen.every((r) => !r.url.includes('open-sesame')),
        'the token is never in a URL',
      );
      const apiCalls = seen.filter((r) => new URL(r.url).pathname === '/_callkeeper/calls');
      assert.ok(
        apiCalls.some((r) => r.token === 'open-sesame'),
        'the API is called with the token header',
      );
      const events = seen.filter((r) => new URL(r.url).pathname === '/_callkeeper/events');
      assert.ok(
        events.some((r) => r.token === 'open-sesame'),
        'the event stream too',
      );
    } finally {
      await browser.close();
      await ck.close();
      await bot.stop();
    }
  });
});
