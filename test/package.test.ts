import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from './helpers.js';
import { ROOT } from './paths.js';

const execFileP = promisify(execFile);
const NPM_TIMEOUT = 10 * 60_000;

/** Runs a command; resolves with its output (stdout + stderr), rejects with it on failure. */
async function run(cmd: string, args: string[], cwd: string, env: Record<string, string | undefined> = process.env): Promise<string> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { cwd, env, timeout: NPM_TIMEOUT, maxBuffer: 64 * 1024 * 1024 });
    return `${stdout}\n${stderr}`;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** npm without the settings of the npm that may be running this test (npm test). */
function npmEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('npm_')) env[k] = v;
  // npm itself must reach the package registry (the one place beyond loopback a test may go):
  // the loopback guard (test/loopback-only.mjs, handed down in NODE_OPTIONS) is taken off for it.
  if (env.NODE_OPTIONS)
    env.NODE_OPTIONS = env.NODE_OPTIONS.split(/\s+/)
      .filter((o) => !o.includes('loopback-only.mjs'))
      .join(' ');
  // --prefer-offline: what npm has cached is not asked for again (a fresh clone on a machine
  // that ran `npm ci` has every locked package cached); what it lacks still comes from the registry.
  // The run's signing keys (test/run-tests.mjs): a server started here makes no RSA keys of its own.
  const keys = process.env.CALLKEEPER_TEST_KEY_DIR;
  return {
    ...env,
    ...(keys !== undefined ? { CALLKEEPER_SIGNING_KEY_DIR: keys } : {}),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_prefer_offline: 'true',
    ...extra,
  };
}

const sqliteDir = (project: string) => join(project, 'node_modules', 'better-sqlite3');
const sqliteVersion = (project: string) =>
  (JSON.parse(readFileSync(join(sqliteDir(project), 'package.json'), 'utf8')) as { version: string }).version;

/** Copies this checkout's compiled better-sqlite3 into `project` (same version, checked). */
function reuseNativeBuild(project: string): void {
  assert.equal(sqliteVersion(project), sqliteVersion(ROOT), 'the same better-sqlite3 as this checkout');
  cpSync(join(sqliteDir(ROOT), 'build'), join(sqliteDir(project), 'build'), { recursive: true });
}

/** Starts a server (argv), waits for its ready file, returns it with the parsed URLs. */
async function startServing(cmd: string, args: string[], cwd: string, env: Record<string, string | undefined>) {
  const readyFile = join(cwd, 'ready.json');
  const child: ChildProcess = spawn(cmd, [...args, '--ready-file', readyFile], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    const watcher = watch(cwd, () => existsSync(readyFile) && done());
    const timer = setTimeout(() => done(new Error(`not ready within 120 s:\n${out}`)), 120_000);
    void exited.then(() => done(new Error(`exited before ready:\n${out}`)));
    function done(err?: Error) {
      watcher.close();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    }
    if (existsSync(readyFile)) done();
  });
  const ready = JSON.parse(readFileSync(readyFile, 'utf8')) as { http: string; health: string; pid: number };
  return {
    ready,
    output: () => out,
    async stop() {
      process.kill(ready.pid, 'SIGTERM');
      await exited;
    },
  };
}

// The checks below are independent once the package is packed (each in a directory of its own),
// and mostly wait for npm's disk and network: they run side by side.
describe('the package as users get it', { concurrency: true }, () => {
  let tarball = '';
  let files: string[] = [];
  const work = tempDir('callkeeper-pack-');
  before(async () => {
    const out = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work.path], ROOT, npmEnv());
    const info = JSON.parse(out.slice(out.indexOf('['), out.lastIndexOf(']') + 1)) as { filename: string; files: { path: string }[] }[];
    files = info[0]?.files.map((f) => f.path) ?? [];
    tarball = join(work.path, info[0]?.filename ?? '');
  });
  after(() => work.remove());

  test('npm pack: LICENSE, metadata, types entry points, the schema; no source maps pointing at unshipped files', () => {
    for (const f of [
      'LICENSE',
      'README.md',
      'callkeeper.schema.json',
      'package.json',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/keeper/index.d.ts',
      'dist/cli/main.js',
    ])
      assert.ok(files.includes(f), f);
    assert.deepEqual(
      files.filter((f) => f.endsWith('.map')),
      [],
      'no source maps',
    );
    assert.deepEqual(
      files.filter((f) => f.startsWith('src/') || f.startsWith('test/')),
      [],
    );
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(pkg.license, 'MIT');
    assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/);
    assert.ok((pkg.repository as { url: string }).url);
    assert.equal(pkg.main, './dist/index.js');
    assert.equal(pkg.types, './dist/index.d.ts');
    assert.ok(existsSync(tarball));
  });

  test("the Dockerfile's steps, without Docker: npm ci --omit=dev from the packed package and the lock, start, HEALTHCHECK", async () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^FROM node:20-slim\s*$/m, 'the runtime image is Node 20 slim');
    assert.match(dockerfile, /npm ci --omit=dev/);
    assert.match(dockerfile, /^USER node$/m, 'runs as the unprivileged node user');
    assert.match(dockerfile, /^VOLUME \["\/data"\]$/m);
    assert.match(dockerfile, /CALLKEEPER_DATA=\/data/);
    const health = /^HEALTHCHECK .*\\\n\s+CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    assert.ok(health, 'a HEALTHCHECK in exec form');
    const healthCmd = JSON.parse(health) as string[];
    assert.ok(healthCmd.join(' ').includes('/_callkeeper/health'));

    // COPY --from=build /pkg: the tarball's package with the lock file next to it.
    const app = join(work.path, 'app');
    mkdirSync(app);
    await run('tar', ['-xzf', tarball, '-C', app, '--strip-components=1'], work.path);
    cpSync(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
    await run('npm', ['pkg', 'delete', 'scripts.prepare'], app, npmEnv());
    // The image compiles better-sqlite3 in this step; here its install script is skipped and the
    // native build of this checkout's node_modules is reused (the same locked version): compiling
    // it again takes more than ten minutes on a busy two-core machine.
    const ci = await run('npm', ['ci', '--omit=dev', '--ignore-scripts'], app, npmEnv());
    assert.doesNotMatch(ci, /EBADENGINE/, ci);
    reuseNativeBuild(app);
    assert.equal(existsSync(join(app, 'node_modules', 'typescript')), false, 'production dependencies only');
    assert.ok(existsSync(join(app, 'node_modules', 'better-sqlite3')));

    // The image's ENV, on loopback and free ports here (the image listens on 0.0.0.0:4545).
    const data = join(work.path, 'data');
    const env = npmEnv({
      NODE_ENV: 'production',
      CALLKEEPER_DATA: data,
      CALLKEEPER_HOST: '127.0.0.1',
      CALLKEEPER_PORT: '0',
      XDG_STATE_HOME: join(work.path, 'state'),
    });
    const server = await startServing('node', [join(app, 'dist', 'cli', 'main.js'), 'serve'], app, env);
    try {
      const port = new URL(server.ready.http).port;
      const [cmd, ...args] = healthCmd;
      await run(cmd as string, args, app, { ...env, CALLKEEPER_PORT: port });
      assert.ok(existsSync(join(data, 'callkeeper.db')), 'the data volume holds the store');
    } finally {
      await server.stop();
    }
    // And the HEALTHCHECK fails when nothing answers.
    await assert.rejects(run(healthCmd[0] as string, healthCmd.slice(1), app, { ...env, CALLKEEPER_PORT: '9' }));
  });

  test('installed into an empty project: no EBADENGINE, npx callkeeper serve answers health, callkeeper/keeper imports from JS, TypeScript resolves both entry points (node and nodenext)', async () => {
    const project = join(work.path, 'consumer');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-bot', private: true, type: 'module' }));
    // As above, better-sqlite3's native build is reused rather than compiled (its version is
    // pinned to this checkout's so that the binary fits).
    const installed = await run(
      'npm',
      ['install', tarball, `better-sqlite3@${sqliteVersion(ROOT)}`, 'typescript@5.9', '@types/node@20', '--ignore-scripts'],
      project,
      npmEnv(),
    );
    assert.doesNotMatch(installed, /EBADENGINE/, installed);
    reuseNativeBuild(project);
    const env = npmEnv({ XDG_STATE_HOME: join(work.path, 'state2') });
    const server = await startServing('npx', ['callkeeper', 'serve', '--memory', '--port', '0', '--no-https'], project, env);
    try {
      const res = await fetch(server.ready.health);
      assert.equal(res.status, 200);
    } finally {
      await server.stop();
    }
    const imported = await run(
      'node',
      [
        '--input-type=module',
        '-e',
        "const k = await import('callkeeper/keeper'); const c = await import('callkeeper'); console.log(typeof k.KeepAlive, typeof c.createCallkeeper)",
      ],
      project,
    );
    assert.match(imported, /function function/);

    writeFileSync(
      join(project, 'bot.ts'),
      `import { createCallkeeper, ManualClock } from 'callkeeper';
import { KeepAlive } from 'callkeeper/keeper';
export async function main(): Promise<void> {
  const ck = await createCallkeeper({ clock: new ManualClock(), logger: false });
  const base: string = await ck.listen('127.0.0.1', 0);
  const keeper = new KeepAlive({ baseUrl: base + '/v1.0', getToken: async () => 'token' });
  const size: number = keeper.size;
  // @ts-expect-error: the types are real, not any: size is a number
  const wrong: string = keeper.size;
  console.log(size, wrong);
  await keeper.close();
  await ck.close();
}
`,
    );
    const tsc = join(project, 'node_modules', 'typescript', 'bin', 'tsc');
    for (const [module, moduleResolution] of [
      ['esnext', 'node'],
      ['nodenext', 'nodenext'],
    ]) {
      const config = {
        compilerOptions: { module, moduleResolution, target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
        files: ['bot.ts'],
      };
      writeFileSync(join(project, `tsconfig.${moduleResolution}.json`), JSON.stringify(config));
      await run('node', [tsc, '-p', `tsconfig.${moduleResolution}.json`], project);
    }
  });

  test('a fresh npm install leaves package-lock.json unchanged', async () => {
    const dir = join(work.path, 'lock');
    mkdirSync(dir);
    cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    cpSync(join(ROOT, 'package-lock.json'), join(dir, 'package-lock.json'));
    await run('npm', ['install', '--package-lock-only', '--ignore-scripts'], dir, npmEnv());
    assert.equal(readFileSync(join(dir, 'package-lock.json'), 'utf8'), readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
  });
});

describe("npm test's build: skipped when dist/ is a build of the sources as they are", () => {
  test('the stamp matches a build of these sources, and no longer once a source changes, is added or dist/ is gone', async () => {
    const stamp = (await import(pathToFileURL(join(ROOT, 'scripts', 'build-stamp.mjs')).href)) as {
      writeStamp(root: string): void;
      distUpToDate(root: string): boolean;
    };
    const work = tempDir('callkeeper-stamp-');
    try {
      const root = work.path;
      for (const f of ['src', 'tsconfig.json', 'package.json', 'scripts']) cpSync(join(ROOT, f), join(root, f), { recursive: true });
      assert.equal(stamp.distUpToDate(root), false, 'no dist/ yet');
      mkdirSync(join(root, 'dist'));
      stamp.writeStamp(root);
      assert.equal(stamp.distUpToDate(root), true);
      writeFileSync(join(root, 'src/server.ts'), `${readFileSync(join(root, 'src/server.ts'), 'utf8')}\n// changed\n`);
      assert.equal(stamp.distUpToDate(root), false, 'a source changed');
      stamp.writeStamp(root);
      writeFileSync(join(root, 'src/store/redis/lua/new.lua'), '-- new\n');
      assert.equal(stamp.distUpToDate(root), false, 'a source added (Lua scripts are copied into dist too)');
      stamp.writeStamp(root);
      writeFileSync(join(root, 'package.json'), readFileSync(join(root, 'package.json'), 'utf8').replace('"version": "', '"version": "9'));
      assert.equal(stamp.distUpToDate(root), false, 'the version (which the CLI reports) changed');
    } finally {
      work.remove();
    }
  });
});
