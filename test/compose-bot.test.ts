import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnServe } from './cli-process.js';
import { tempDir } from './helpers.js';
import { ROOT } from './paths.js';

test('the compose example bot (plain Node, no dependencies) runs against a real callkeeper: token, call, keepAlive, validated notifications, its end', async () => {
  const dir = tempDir();
  const server = await spawnServe(['--memory', '--establish-delay', '200ms'], undefined, { ...process.env, XDG_STATE_HOME: dir.path });
  try {
    assert.ok(server.tlsBase && server.caPath);
    const bot = spawn(process.execPath, [join(ROOT, 'examples', 'compose', 'bot', 'bot.mjs')], {
      env: { ...process.env, CALLKEEPER_URL: server.tlsBase, NODE_EXTRA_CA_CERTS: server.caPath, BOT_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    bot.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    bot.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = once(bot, 'exit');
    const timer = setTimeout(() => bot.kill('SIGKILL'), 180_000);
    try {
      // Once it is established, the other party hangs up (control API): the bot sees the end and exits.
      const id = await new Promise<string>((resolve, reject) => {
        const check = () => {
          const m = /call ([0-9a-f-]{36}) created[\s\S]*notification: updated established/.exec(out);
          if (m?.[1] && out.includes('keepAlive: 200')) resolve(m[1]);
        };
        bot.stdout.on('data', check);
        void exited.then(() => reject(new Error(`bot exited:\n${out}`)));
      });
      assert.match(out, /keepAlive: 200/);
      const hangup = await fetch(`${server.base}/_callkeeper/calls/${id}/hangup`, { method: 'POST' });
      assert.equal(hangup.status, 200);
      const [code] = await exited;
      assert.equal(code, 0, out);
      assert.match(out, /notification: deleted terminated\ncall ended/);
      const sent = (await (await fetch(`${server.base}/_callkeeper/notifications?callId=${id}`)).json()) as { value: { status: string }[] };
      assert.ok(
        sent.value.every((n) => n.status === 'delivered'),
        'the bot accepted each notification (its JWT checked out)',
      );
    } finally {
      clearTimeout(timer);
      bot.kill('SIGKILL');
    }
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
    dir.remove();
  }
});

test('snippets, guides and examples use a loopback bot, never a public host', () => {
  const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).map((f) => join('docs', f))];
  const walk = (d: string): string[] =>
    readdirSync(join(ROOT, d)).flatMap((f) => (statSync(join(ROOT, d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
  files.push(...walk('examples'));
  for (const f of files) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    assert.doesNotMatch(text, /example\.(com|org|net)/, f);
    for (const m of text.matchAll(/["'`]?callbackUri["'`]?\s*[:=]\s*["'`f]*([a-z]+:\/\/[^/"'`\s]+)/gi)) {
      assert.match(m[1] ?? '', /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:[\d{}$a-z_.[\]()]+)?$/i, `${f}: ${m[0]}`);
    }
  }
});
