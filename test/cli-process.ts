import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** The built CLI, as `npm start` and the bin run it. */
export const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

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

/** Starts `callkeeper serve` in a child process on a free port and waits for its banner. */
export async function spawnServe(args: string[], cwd?: string, env?: Record<string, string | undefined>): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--https-port', '0', ...args], {
    cwd,
    env: env ?? process.env,
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
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 20 s:\n${out}`)), 20_000);
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
    env: options.env ?? process.env,
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
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}
