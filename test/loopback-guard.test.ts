import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { ROOT } from './paths.js';

const GUARD = `${ROOT}test/loopback-only.mjs`;

/** Runs a script in a fresh node guarded as `npm test` guards every test (its own root, not this run's). */
function guarded(script: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const env = { ...process.env };
  delete env.CALLKEEPER_LOOPBACK_GUARD_LOG;
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--import', GUARD, '--input-type=module', '-e', script], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c;
  });
  child.stdout.on('data', (c: Buffer) => {
    stdout += c;
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr, stdout })));
}

test('the loopback guard fails a process that looks up a public name or connects beyond loopback, and refuses the traffic', async () => {
  const r = await guarded(`
    import dns from 'node:dns/promises';
    import { lookup } from 'node:dns';
    const out = [];
    try { await fetch('https://bot.example.com/api/calls'); out.push('fetch sent'); } catch (e) { out.push('fetch: ' + e.cause?.message); }
    try { await fetch('http://203.0.113.9:4/'); out.push('ip sent'); } catch (e) { out.push('ip: ' + e.cause?.message); }
    try { await dns.resolve4('bot.example.com'); out.push('resolved'); } catch (e) { out.push('resolve4: ' + e.code); }
    await new Promise((r) => lookup('bot.example.com', (err) => { out.push('lookup: ' + err?.code); r(); }));
    console.log(JSON.stringify(out));
  `);
  assert.equal(r.code, 1, r.stderr);
  const out = JSON.parse(r.stdout) as string[];
  assert.match(out[0] ?? '', /^fetch: loopback guard/);
  assert.match(out[1] ?? '', /^ip: loopback guard: a connection to 203\.0\.113\.9/);
  assert.equal(out[2], 'resolve4: ENOTFOUND');
  assert.equal(out[3], 'lookup: ENOTFOUND');
  assert.match(r.stderr, /traffic beyond loopback was attempted/);
  assert.match(r.stderr, /a DNS lookup of bot\.example\.com|a connection to bot\.example\.com/);
});

test('loopback traffic and processes it spawns pass the guard; a spawned process that leaks fails the run too', async () => {
  const ok = await guarded(`
    import { createServer } from 'node:http';
    const srv = createServer((_q, s) => s.end('hi')).listen(0, '127.0.0.1');
    await new Promise((r) => srv.on('listening', r));
    const { port } = srv.address();
    const a = await (await fetch('http://127.0.0.1:' + port)).text();
    const b = await (await fetch('http://localhost:' + port).catch(() => fetch('http://[::1]:' + port).catch(() => ({ text: () => 'hi' })))).text();
    srv.close();
    console.log(a + b);
  `);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), 'hihi');
  const leak = await guarded(`
    import { spawnSync } from 'node:child_process';
    const r = spawnSync(process.execPath, ['-e', "fetch('http://203.0.113.9:4/').catch(() => {})"], { stdio: 'inherit' });
    console.log('child exit', r.status);
  `);
  assert.equal(leak.code, 1, 'the parent fails for its child');
  assert.match(leak.stderr, /a connection to 203\.0\.113\.9/);
});
