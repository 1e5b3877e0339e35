import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { tempDir } from './helpers.js';
import { ROOT } from './paths.js';

/** The body of the first ```lang block after `heading` in README.md. */
function readmeBlock(heading: string, lang: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `README has ${heading}`);
  const start = readme.indexOf(`\`\`\`${lang}\n`, at);
  const end = readme.indexOf('\n```', start + 4);
  return readme.slice(start + lang.length + 4, end + 1);
}

/**
 * An empty project with callkeeper installed (linked, as `npm install` of this checkout would)
 * and an `npm test` that uses callkeeper through CALLKEEPER_URL and the CA it was told to trust.
 */
function userProject(dir: string): void {
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(ROOT, join(dir, 'node_modules', 'callkeeper'));
  symlinkSync(join('..', 'callkeeper', 'dist', 'cli', 'main.js'), join(dir, 'node_modules', '.bin', 'callkeeper'));
  // npm makes a package's bin executable when it installs it; so does this link.
  chmodSync(join(ROOT, 'dist', 'cli', 'main.js'), 0o755);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'my-bot', private: true, type: 'module', scripts: { test: 'node bot.test.mjs' } }),
  );
  writeFileSync(
    join(dir, 'bot.test.mjs'),
    `const base = process.env.CALLKEEPER_URL;
if (!base?.startsWith('https://')) throw new Error('CALLKEEPER_URL is not set: ' + base);
const token = await fetch(base + '/ca11ca11-0000-4000-8000-000000000001/oauth2/v2.0/token', {
  method: 'POST',
  body: new URLSearchParams({ client_id: 'ca11ca11-0000-4000-8000-00000000b075', client_secret: 'callkeeper-dev-secret',
    scope: 'https://graph.microsoft.com/.default', grant_type: 'client_credentials' }),
}).then((r) => r.json());
const headers = { authorization: 'Bearer ' + token.access_token, 'content-type': 'application/json' };
const call = await fetch(base + '/v1.0/communications/calls', { method: 'POST', headers, body: JSON.stringify({
  '@odata.type': '#microsoft.graph.call', callbackUri: 'http://127.0.0.1:9/api/calls', requestedModalities: ['audio'],
  mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
  targets: [{ identity: { user: { id: '8d4d8ca3-0000-4000-8000-000000000001' } } }] }) }).then((r) => r.json());
const kept = await fetch(base + '/v1.0/communications/calls/' + call.id + '/keepAlive', { method: 'POST', headers });
if (kept.status !== 200) throw new Error('keepAlive answered ' + kept.status);
console.log('BOT TESTS PASSED against ' + base);
`,
  );
}

/** Runs a bash script in `cwd`; resolves with its exit code and output. */
async function bash(script: string, cwd: string, env: Record<string, string | undefined>): Promise<{ code: number; out: string }> {
  const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code: code ?? -1, out };
}

/** Kills a server the recipe left running (a failed run), by the pid in its ready file. */
function cleanUp(dir: string): void {
  const ready = join(dir, 'callkeeper-ready.json');
  if (!existsSync(ready)) return;
  try {
    process.kill((JSON.parse(readFileSync(ready, 'utf8')) as { pid: number }).pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

describe('README "Use in CI": the recipes run as written', () => {
  test('the shell recipe starts callkeeper in the background, waits, runs npm test against it, and stops it cleanly', async () => {
    const dir = tempDir();
    try {
      userProject(dir.path);
      const script = readmeBlock('### Any CI: a shell script', 'sh');
      const env: Record<string, string | undefined> = { ...process.env, XDG_STATE_HOME: join(dir.path, 'state') };
      delete env.NODE_EXTRA_CA_CERTS;
      delete env.CALLKEEPER_URL;
      const { code, out } = await bash(script, dir.path, env);
      const logFile = join(dir.path, 'callkeeper.log');
      assert.equal(code, 0, `${out}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`);
      assert.match(out, /BOT TESTS PASSED against https:\/\/127\.0\.0\.1:\d+/);
      const log = readFileSync(join(dir.path, 'callkeeper.log'), 'utf8');
      const events = log
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => (JSON.parse(l) as { event?: string }).event)
        .filter(Boolean);
      // 'stopped' is the last event and 'stopping' comes before it; a delivery to the recipe's
      // unreachable callback still in flight at shutdown may log its failure between them.
      assert.deepEqual([events[0], ...events.filter((e) => e === 'stopping' || e === 'stopped')], ['ready', 'stopping', 'stopped'], log);
      assert.equal(events.at(-1), 'stopped', log);
      assert.equal(existsSync(join(dir.path, 'callkeeper-ready.json')), false, 'stopped cleanly: the ready file is gone');
    } finally {
      cleanUp(dir.path);
      dir.remove();
    }
  });

  test("the GitHub Actions workflow's run: steps, in order, with a GITHUB_ENV file", async () => {
    const dir = tempDir();
    try {
      userProject(dir.path);
      const workflow = parse(readmeBlock('### GitHub Actions', 'yaml')) as {
        jobs: { test: { steps: { run?: string; uses?: string; if?: string; name?: string }[] } };
      };
      const steps = workflow.jobs.test.steps.filter((s) => s.run !== undefined);
      assert.deepEqual(
        workflow.jobs.test.steps.filter((s) => s.uses).map((s) => s.uses),
        ['actions/checkout@v4', 'actions/setup-node@v4'],
      );
      const githubEnv = join(dir.path, 'github-env');
      writeFileSync(githubEnv, '');
      const env: Record<string, string | undefined> = { ...process.env, GITHUB_ENV: githubEnv, XDG_STATE_HOME: join(dir.path, 'state') };
      delete env.NODE_EXTRA_CA_CERTS;
      delete env.CALLKEEPER_URL;
      let output = '';
      for (const step of steps) {
        // `npm ci` installs the project's lock file; here callkeeper is linked into it instead.
        if (step.run?.trim() === 'npm ci') continue;
        for (const line of readFileSync(githubEnv, 'utf8').split('\n')) {
          const eq = line.indexOf('=');
          if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
        }
        const { code, out } = await bash(step.run as string, dir.path, env);
        output += out;
        assert.equal(code, 0, `step ${step.name ?? step.run}:\n${output}`);
      }
      assert.match(output, /BOT TESTS PASSED against https:\/\/127\.0\.0\.1:\d+/);
      assert.match(output, /"event":"ready"/, "the last step shows callkeeper's log");
    } finally {
      cleanUp(dir.path);
      dir.remove();
    }
  });
});

test("README's first screen keeps the two newcomer commands", () => {
  const firstScreen = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').slice(0, 25).join('\n');
  assert.match(firstScreen, /^npm install && npm start\b/m);
  assert.match(firstScreen, /^npm install && npm test\b/m);
});
