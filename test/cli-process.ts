import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { ROOT } from './paths.js';

/** The built CLI, as `npm start` and the bin run it. */
export const CLI = `${ROOT}dist/cli/main.js`;

let stateDir: string | undefined;

/**
 * The environment of a CLI child: the caller's (or this process's), with XDG_STATE_HOME pointed
 * at a directory of this test process's own unless the caller chose one. A --memory server keeps
 * its CA and certificate in the user's state directory; test files run in parallel, and two
 * servers creating the same CA at once would race.
 */
export function childEnv(env?: Record<string, string | undefined>): Record<string, string | undefined> {
  const base = withSuiteKeys(env ?? process.env);
  if (env && env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== process.env.XDG_STATE_HOME) return base;
  if (!stateDir) {
    const dir = mkdtempSync(join(tmpdir(), 'callkeeper-test-state-'));
    stateDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return { ...base, XDG_STATE_HOME: stateDir };
}

/**
 * The run's signing keys (test/run-tests.mjs) unless the caller chose: a fresh store then makes
 * no RSA keys of its own. A test of how the CLI keeps keys sets CALLKEEPER_SIGNING_KEY_DIR to ''
 * (unset, for the CLI).
 */
function withSuiteKeys(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const keys = process.env.CALLKEEPER_TEST_KEY_DIR;
  return keys === undefined || env.CALLKEEPER_SIGNING_KEY_DIR !== undefined ? env : { ...env, CALLKEEPER_SIGNING_KEY_DIR: keys };
}

export interface ServeProcess {
  child: ChildProcess;
  base: string;
  /** https://host:port when TLS is on. */
  tlsBase?: string;
  /** The CA to trust, when callkeeper made its own. */
  caPath?: string;
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

const BANNER_TIMEOUT_MS = 90_000;

/**
 * Every CLI child still running when the file's tests are done is killed, whatever failed: a
 * child left behind by a failed assertion would keep this process (and `npm test`) from ending.
 */
const running = new Set<ChildProcess>();
const killRunning = () => {
  for (const c of running) c.kill('SIGKILL');
};
after(killRunning);
process.once('exit', killRunning);
function track(child: ChildProcess, exited: Promise<unknown>): void {
  running.add(child);
  void exited.then(() => running.delete(child));
}

/**
 * Node flags of a `callkeeper serve` child that starts, answers a few requests and is stopped,
 * as most tests' are: no TurboFan. A start then costs about 0.75 s of CPU instead of 1.05 s: the
 * optimizing compiler's background work on start-up code that runs once never pays back in a
 * process this short (docs/benchmarks.md, seventh round). It changes no behaviour, only how
 * V8 compiles; a child under load for minutes (keeper-fleet's server) keeps the full JIT.
 */
export const SHORT_CHILD_NODE_FLAGS = ['--no-turbofan'];

export interface SpawnOptions {
  /** A child that serves load for minutes: the full JIT (see SHORT_CHILD_NODE_FLAGS). */
  longRunning?: boolean;
}

/** Starts `callkeeper serve` in a child process on a free port and waits for its banner. */
export async function spawnServe(
  args: string[],
  cwd?: string,
  env?: Record<string, string | undefined>,
  options: SpawnOptions = {},
): Promise<ServeProcess> {
  const flags = options.longRunning ? [] : SHORT_CHILD_NODE_FLAGS;
  const child = spawn(process.execPath, [...flags, CLI, 'serve', '--port', '0', '--https-port', '0', ...args], {
    cwd,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  track(child, exited);
  const base = await new Promise<string>((resolve, reject) => {
    // Generous: test files run in parallel on a shared machine, and a start can take many seconds.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no banner within ${BANNER_TIMEOUT_MS / 1000} s:\n${out}`));
    }, BANNER_TIMEOUT_MS);
    const check = () => {
      const m = /Graph API\s+(http:\/\/[^\s]+)\/v1\.0/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before its banner:\n${out}`));
    });
  });
  const tls = /Graph API\s+(https:\/\/[^\s]+)\/v1\.0/.exec(out)?.[1];
  const ca = /NODE_EXTRA_CA_CERTS=(\S+)/.exec(out)?.[1];
  return { child, base, ...(tls ? { tlsBase: tls } : {}), ...(ca ? { caPath: ca } : {}), output: () => out, exited };
}

export async function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv(options.env),
    cwd: options.cwd,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exit = once(child, 'exit');
  track(child, exit);
  const [code] = (await exit) as [number];
  return { code, stdout, stderr };
}
