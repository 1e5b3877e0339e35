import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { envName, flagName } from '../src/cli/option-def.js';
import { configSchemaText, readmeWithOptionsTable } from '../src/cli/option-files.js';
import { resolveOptions } from '../src/cli/options.js';
import { SERVE_OPTIONS } from '../src/cli/serve-options.js';
import { runCli, spawnServe } from './cli-process.js';
import { tempDir } from './helpers.js';
import { ROOT } from './paths.js';

const run = promisify(execFile);
const resolveServe = (argv: string[], env: Record<string, string> = {}) =>
  resolveOptions(SERVE_OPTIONS, argv, env, { command: 'callkeeper serve', configKey: 'config', extraFileKeys: ['apps'] });

/** The message a bad invocation fails with (in process: the same code the CLI runs). */
function refusal(argv: string[], env: Record<string, string> = {}): string {
  try {
    resolveServe(argv, env);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`accepted: ${argv.join(' ')} ${JSON.stringify(env)}`);
}

describe('serve options: one definition', () => {
  test("README's table and callkeeper.schema.json are generated from the definition (npm run docs)", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    assert.equal(readme, readmeWithOptionsTable(readme), 'README.md is out of date: run npm run docs');
    assert.equal(readFileSync(join(ROOT, 'callkeeper.schema.json'), 'utf8'), configSchemaText(), 'run npm run docs');
  });

  test('--help lists every option with its environment variable, config key, default and range', async () => {
    const { code, stdout } = await runCli(['serve', '--help']);
    assert.equal(code, 0);
    for (const [key, def] of Object.entries(SERVE_OPTIONS)) {
      assert.ok(stdout.includes(`--${def.kind.arg === '' && def.default === true ? 'no-' : ''}${flagName(key)}`), key);
      assert.ok(stdout.includes(envName(key)), envName(key));
      if (!def.notInFile) assert.ok(stdout.includes(`"${key}"`), key);
      if (def.kind.range) assert.ok(stdout.includes(def.kind.range), `${key} range`);
    }
  });

  test('flags > environment > config file > defaults, each option on its own', () => {
    const dir = tempDir();
    try {
      const file = join(dir.path, 'callkeeper.json');
      writeFileSync(file, JSON.stringify({ port: 1111, httpsPort: 2222, keepaliveTimeout: '10m', timeScale: 3, data: 'store' }));
      const r = resolveServe(['--config', file, '--port', '3333'], {
        CALLKEEPER_PORT: '4444',
        CALLKEEPER_HTTPS_PORT: '5555',
        CALLKEEPER_TIME_SCALE: '',
      });
      assert.equal(r.values.port, 3333, 'the flag beats the environment and the file');
      assert.equal(r.values.httpsPort, 5555, 'the environment beats the file');
      assert.equal(r.values.keepaliveTimeout, 10 * 60_000, 'the file beats the default');
      assert.equal(r.values.timeScale, 3, 'an empty variable counts as unset');
      assert.equal(r.values.data, join(dir.path, 'store'), 'a relative path in the file is relative to the file');
      assert.equal(r.values.establishDelay, 1000, 'the default');
      assert.deepEqual(
        { port: r.sources.port, httpsPort: r.sources.httpsPort, keepaliveTimeout: r.sources.keepaliveTimeout, host: r.sources.host },
        { port: 'flag', httpsPort: 'env', keepaliveTimeout: 'file', host: 'default' },
      );
      // The config file can come from the environment too.
      assert.equal(resolveServe([], { CALLKEEPER_CONFIG: file }).values.port, 1111);
    } finally {
      dir.remove();
    }
  });

  test('booleans and repeatable flags: --flag, --no-flag, --flag=false, CALLKEEPER_X=1, lists from repeats or commas', () => {
    assert.equal(resolveServe(['--no-https']).values.https, false);
    assert.equal(resolveServe(['--memory=false']).values.memory, false);
    assert.equal(resolveServe([], { CALLKEEPER_MEMORY: '1' }).values.memory, true);
    assert.equal(resolveServe([], { CALLKEEPER_HTTPS: 'no' }).values.https, false);
    assert.deepEqual(resolveServe(['--tls-san', 'a.test', '--tls-san=10.0.0.1']).values.tlsSan, ['a.test', '10.0.0.1']);
    assert.deepEqual(resolveServe([], { CALLKEEPER_TLS_SAN: 'bot, host.docker.internal' }).values.tlsSan, ['bot', 'host.docker.internal']);
  });

  test('every duration and size has a range: absurd values are refused with a message naming the flag', () => {
    assert.match(refusal(['--keepalive-timeout', '100000000y']), /^--keepalive-timeout: '100000000y' is not a duration/);
    assert.match(refusal(['--keepalive-timeout', '100000d']), /^--keepalive-timeout: '100000d' is out of range: 1s to 30d/);
    assert.match(refusal(['--body-limit', '1e12']), /^--body-limit: '1e12' is not a size/);
    assert.match(refusal(['--body-limit', '1000000000000']), /^--body-limit: '1000000000000' is out of range: 1kb to 64mb/);
    assert.match(refusal(['--time-scale', '1e12']), /^--time-scale: '1e12' is not a positive decimal number/);
    assert.match(refusal(['--time-scale', '10000000']), /^--time-scale: '10000000' is out of range/);
    assert.match(refusal(['--time-scale', '0']), /^--time-scale: '0' is out of range/);
    assert.match(refusal(['--port', '65536']), /^--port: '65536' is out of range: 0 to 65535/);
    assert.match(refusal(['--notify-timeout', '1h']), /^--notify-timeout: '1h' is out of range: 100ms to 5m/);
    assert.match(refusal(['--log-level', 'loud']), /^--log-level: 'loud' is not one of fatal, error, warn/);
    assert.match(refusal(['--tls-san', 'not a name']), /^--tls-san: 'not a name' is neither a DNS name nor an IP address/);
    // Each definition that has a range refuses a value past it, from every source.
    for (const [key, def] of Object.entries(SERVE_OPTIONS)) {
      if (!/^(<duration>|<bytes>|<n>|<port>)$/.test(def.kind.arg)) continue;
      assert.match(refusal([`--${flagName(key)}`, '99999999999']), new RegExp(`^--${flagName(key)}: .*out of range`), key);
      assert.match(
        refusal([], { [envName(key)]: '99999999999' }),
        new RegExp(`^${envName(key)}="99999999999" \\(flag --${flagName(key)}\\)`),
      );
    }
  });

  test('errors name what to change: unknown flags suggest the nearest one; missing values; positionals', () => {
    assert.match(refusal(['--prot', '0']), /unknown option '--prot' \(did you mean --port\?\)/);
    assert.match(refusal(['--keepalive-timout', '1m']), /did you mean --keepalive-timeout\?/);
    assert.match(refusal(['--no-htps']), /did you mean --no-https\?/);
    assert.match(refusal(['--frobnicate']), /^unknown option '--frobnicate'; see callkeeper serve --help/);
    assert.match(refusal(['--port']), /^--port: needs a value <port>/);
    assert.match(refusal(['--port', '--memory']), /^--port: needs a value/);
    assert.match(refusal(['4545']), /unexpected argument '4545'/);
    assert.match(refusal(['-p', '1']), /unknown option '-p'/);
  });

  test('the config file: unknown keys are refused with a suggestion, bad values name the key and the flag', () => {
    const dir = tempDir();
    try {
      const file = join(dir.path, 'c.json');
      const refused = (content: string) => {
        writeFileSync(file, content);
        return refusal(['--config', file]);
      };
      assert.match(refused('{"prot": 1}'), new RegExp(`^--config ${file}: unknown key "prot" \\(did you mean "port"\\?\\)`));
      assert.match(refused('{"config": "x.json"}'), /unknown key "config"/);
      assert.match(refused('{"port": "x"}'), /"port" \(flag --port\): 'x' is not a whole number/);
      assert.match(refused('{"keepaliveTimeout": "100000000y"}'), /"keepaliveTimeout" \(flag --keepalive-timeout\): .*not a duration/);
      assert.match(refused('{"memory": "yes"}'), /"memory" \(flag --memory\): expected true or false/);
      assert.match(refused('[1]'), /expected a JSON object/);
      assert.match(refused('{'), new RegExp(`^--config ${file}: .*JSON`));
      assert.match(refusal(['--config', join(dir.path, 'missing.json')]), /^--config .*ENOENT/);
    } finally {
      dir.remove();
    }
  });

  test('the published JSON schema accepts a full config and refuses an unknown key, like serve does', () => {
    const schema = JSON.parse(readFileSync(join(ROOT, 'callkeeper.schema.json'), 'utf8')) as Record<string, unknown>;
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile(schema);
    const good = {
      $schema: './node_modules/callkeeper/callkeeper.schema.json',
      port: 4545,
      keepaliveTimeout: '45m',
      notifyTimeout: 5000,
      bodyLimit: '2mb',
      logLevel: 'info',
      tlsSan: ['host.docker.internal'],
      apps: [{ displayName: 'bot', roles: ['Calls.Initiate.All'] }],
    };
    assert.ok(validate(good), JSON.stringify(validate.errors));
    assert.equal(validate({ prot: 1 }), false);
    assert.equal(validate({ logLevel: 'loud' }), false);
    assert.equal(validate({ apps: [{ roles: ['Calls.Everything'] }] }), false);
    // And serve reads the same document.
    const dir = tempDir();
    try {
      const file = join(dir.path, 'c.json');
      writeFileSync(file, JSON.stringify(good));
      const r = resolveServe(['--config', file]);
      assert.equal(r.values.bodyLimit, 2 * 1024 * 1024);
      assert.deepEqual(r.file?.extra.apps, good.apps);
    } finally {
      dir.remove();
    }
  });

  test('a real serve: the config file, the environment and a flag each set what they should', async () => {
    const dir = tempDir();
    try {
      const file = join(dir.path, 'callkeeper.json');
      writeFileSync(
        file,
        JSON.stringify({
          timeScale: 5,
          memory: true,
          apps: [{ tenantId: '11111111-2222-4333-8444-555555555555', clientId: '99999999-2222-4333-8444-555555555555', roles: [] }],
        }),
      );
      const env = { ...process.env, CALLKEEPER_CONFIG: file, CALLKEEPER_TIME_SCALE: '7', CALLKEEPER_NO_SUCH_THING: 'ignored' };
      const p = await spawnServe(['--no-https', '--keepalive-timeout', '2m'], dir.path, env);
      try {
        const clock = (await (await fetch(`${p.base}/_callkeeper/clock`)).json()) as { scale: number };
        assert.equal(clock.scale, 7, 'the environment beats the file');
        const apps = (await (await fetch(`${p.base}/_callkeeper/apps`)).json()) as { value: { clientId: string }[] };
        assert.ok(JSON.stringify(apps).includes('99999999-2222-4333-8444-555555555555'), 'apps come from the file');
        assert.match(p.output(), /in memory/);
        assert.match(p.output(), /keepAlive timeout 120s/);
        assert.equal(existsSync(join(dir.path, '.callkeeper')), false);
      } finally {
        p.child.kill('SIGTERM');
        await p.exited;
      }
    } finally {
      dir.remove();
    }
  });

  test('a flag beats a conflicting variable (--memory over CALLKEEPER_DATA); the same source clashing is an error', async () => {
    assert.equal(resolveServe(['--memory'], { CALLKEEPER_DATA: '/data' }).values.memory, true);
    const { code, stderr } = await runCli(['serve', '--memory', '--data', 'x']);
    assert.equal(code, 2);
    assert.match(stderr, /--memory and --data exclude each other/);
    const env = await runCli(['serve', '--port', '0', '--no-https'], {
      env: { ...process.env, CALLKEEPER_MEMORY: 'true', CALLKEEPER_DATA: 'x' },
    });
    assert.match(env.stderr, /CALLKEEPER_MEMORY \(flag --memory\) and CALLKEEPER_DATA \(flag --data\) exclude each other/);
  });

  test('a data directory that cannot be used names --data', async () => {
    const dir = tempDir();
    try {
      const file = join(dir.path, 'a-file');
      writeFileSync(file, 'not a directory');
      for (const args of [
        ['--data', file],
        ['--data', join(file, 'sub'), '--no-https'],
      ]) {
        const { code, stderr } = await runCli(['serve', '--port', '0', ...args]);
        assert.equal(code, 2, stderr);
        assert.match(stderr, /^callkeeper: --data: /, stderr);
        assert.doesNotMatch(stderr, /\n\s+at /);
      }
    } finally {
      dir.remove();
    }
  });

  test('createCallkeeper() with no options writes nothing to disk; the CLI keeps ./.callkeeper by default', async () => {
    const dir = tempDir();
    try {
      const script = `const m = await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))});
        const ck = await m.createCallkeeper(); console.log(ck.store.location); await ck.close();`;
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: dir.path, timeout: 60_000 });
      assert.equal(stdout.trim(), 'memory');
      assert.equal(existsSync(join(dir.path, '.callkeeper')), false);
      const p = await spawnServe(['--no-https'], dir.path);
      p.child.kill('SIGTERM');
      await p.exited;
      assert.ok(existsSync(join(dir.path, '.callkeeper', 'callkeeper.db')));
    } finally {
      dir.remove();
    }
  });
});
