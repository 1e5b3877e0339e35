import { type ChildProcess, fork, type SpawnOptions, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildReply, ParentMessage } from './child-protocol.js';

export const REPO = fileURLToPath(new URL('..', import.meta.url));

/** Every process the bench started, so a failure or Ctrl-C never leaves one behind. */
const started = new Set<ChildProcess>();

function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    // Detached children lead their own process group: this reaches what they spawned too.
    process.kill(-proc.pid, signal);
  } catch {
    try {
      proc.kill(signal);
    } catch {}
  }
}

export function killAllStarted(): void {
  for (const p of started) killGroup(p, 'SIGKILL');
}
process.once('exit', killAllStarted);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAllStarted();
    process.exit(130);
  });
}

/** Stops every process the bench started except `keep` (after a benchmark overran its budget). */
export async function stopAllStarted(keep: readonly ChildProcess[] = []): Promise<void> {
  await Promise.all([...started].filter((p) => !keep.includes(p)).map((p) => stopProcess(p, 2_000)));
}

/** Stops a process (and its group): SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcess(proc: ChildProcess, graceMs = 5_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    started.delete(proc);
    return;
  }
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  killGroup(proc, 'SIGTERM');
  const timer = setTimeout(() => killGroup(proc, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  started.delete(proc);
}

/** Spawns a process in its own group, tracked for clean-up. */
export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const proc = spawn(cmd, args, { stdio: 'ignore', ...opts, detached: true });
  started.add(proc);
  return proc;
}

export interface ServerChild {
  url: string;
  proc: ChildProcess;
  /** Sends {type} and resolves with the child's reply of the same type; rejects after `timeoutMs`. */
  ask<T extends ParentMessage['type']>(type: T, timeoutMs?: number): Promise<Extract<ChildReply, { type: T }>>;
  stop(): Promise<void>;
}

/** BENCH_CPU_PROF=<dir>: every server child writes a V8 CPU profile there when it stops. */
function profileFlags(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
}

/** Forks a bench child (bench/<script>.ts, run through tsx) and waits for its {type:'ready'}. */
export async function forkServer(script: string, args: string[] = [], timeoutMs = 120_000): Promise<ServerChild> {
  const proc = fork(fileURLToPath(new URL(script, import.meta.url)), args, {
    cwd: REPO,
    execArgv: ['--import', 'tsx', ...profileFlags()],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  started.add(proc);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready after ${timeoutMs} ms`)), timeoutMs);
    proc.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
    proc.on('message', (m: ChildReply) => {
      if (m.type !== 'ready') return;
      clearTimeout(timer);
      resolve(m.url);
    });
  });
  return {
    url,
    proc,
    ask<T extends ParentMessage['type']>(type: T, timeoutMs = 10_000) {
      return new Promise<Extract<ChildReply, { type: T }>>((resolve, reject) => {
        const timer = setTimeout(() => {
          proc.off('message', onMessage);
          reject(new Error(`${script} did not answer '${type}' within ${timeoutMs} ms (event loop blocked?)`));
        }, timeoutMs);
        const onMessage = (m: ChildReply) => {
          if (m.type !== type) return;
          clearTimeout(timer);
          proc.off('message', onMessage);
          resolve(m as Extract<ChildReply, { type: T }>);
        };
        proc.on('message', onMessage);
        proc.send({ type });
      });
    },
    stop: () => stopProcess(proc),
  };
}

/** Resolves when `probe` first succeeds; rejects after `timeoutMs`. */
export async function waitUntil(probe: () => Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {}
    if (Date.now() > end) throw new Error(`not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
