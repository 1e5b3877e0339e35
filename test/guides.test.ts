import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { spawnServe } from './cli-process.js';
import { tempDir } from './helpers.js';
import { ROOT } from './paths.js';

const run = promisify(execFile);

/** The ```lang blocks of a Markdown file. */
function blocks(file: string, lang: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1] ?? '');
}

/** A python3 that has httpx and PyJWT, if this machine has one. */
async function pythonWithHttpx(): Promise<string | undefined> {
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      await run(python, ['-c', 'import httpx, jwt']);
      return python;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

describe('the Python and C# guides', () => {
  test('docs/python.md: the script runs as written: token, create, keepAlive, notifications with their JWT validated, hang-up', async (t) => {
    const python = await pythonWithHttpx();
    if (!python) {
      t.skip('no python3 with httpx and PyJWT here (CI installs python3-httpx and python3-jwt)');
      return;
    }
    const script = blocks('docs/python.md', 'python').find((b) => b.includes('import httpx'));
    assert.ok(script, 'the guide has its script');
    const dir = tempDir();
    const server = await spawnServe(['--memory', '--establish-delay', '200ms'], undefined, { ...process.env, XDG_STATE_HOME: dir.path });
    try {
      writeFileSync(join(dir.path, 'bot.py'), script);
      assert.ok(server.tlsBase && server.caPath);
      const { stdout } = await run(python, [join(dir.path, 'bot.py')], {
        env: { ...process.env, CALLKEEPER_URL: server.tlsBase, SSL_CERT_FILE: server.caPath },
        timeout: 180_000,
      });
      assert.match(stdout, /keepAlive 200/);
      assert.match(stdout, /notification updated established/);
      assert.match(stdout, /terminated; keepAlive now: 404/);
      const id = /PYTHON GUIDE OK ([0-9a-f-]{36})/.exec(stdout)?.[1];
      assert.ok(id, stdout);
      // What the script did is visible in callkeeper: the call ended by the bot, each notification delivered.
      const call = (await (await fetch(`${server.base}/_callkeeper/calls/${id}`)).json()) as {
        state: string;
        lastKeepAliveDateTime: string | null;
      };
      assert.equal(call.state, 'terminated');
      assert.ok(call.lastKeepAliveDateTime, 'the keepAlive was received');
      const sent = (await (await fetch(`${server.base}/_callkeeper/notifications?callId=${id}`)).json()) as { value: { status: string }[] };
      assert.ok(sent.value.length >= 3 && sent.value.every((n) => n.status === 'delivered'), JSON.stringify(sent.value));
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
      dir.remove();
    }
  });

  test('docs/csharp.md covers token, create, keepAlive and validating a notification JWT (not compiled: no .NET SDK here)', () => {
    const code = blocks('docs/csharp.md', 'csharp').join('\n');
    for (const needle of [
      'ClientSecretCredential',
      'AuthorityHost = new Uri(callkeeper)',
      'Communications.Calls.PostAsync',
      '.KeepAlive.PostAsync()',
      'JsonWebTokenHandler',
      'ValidIssuer = "https://api.botframework.com"',
      'ValidAudience = ClientId',
      '/botframework/v1/.well-known/openidconfiguration',
      'http://127.0.0.1:3978/api/calls',
    ])
      assert.ok(code.includes(needle), needle);
    assert.doesNotMatch(code, /example\.com/, 'a loopback bot, never a public host');
  });
});
