import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { wallTime } from '../clock/clock.js';

const STALE_MS = 60_000;
const GIVE_UP_MS = 60_000;

function holderIsGone(lock: string): boolean {
  try {
    const pid = Number(readFileSync(lock, 'utf8'));
    if (wallTime() - statSync(lock).mtimeMs > STALE_MS) return true;
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return false;
  } catch (err) {
    // ESRCH: no such process (it died holding the lock); ENOENT: released meanwhile.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Runs `fn` holding `dir/.lock` (created exclusively, holding our pid): servers started at the
 * same time on one TLS directory (parallel tests, several --memory servers) must not each
 * write a CA of their own over the other's. A lock whose process is gone is taken over.
 */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, '.lock');
  const started = wallTime();
  for (;;) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (holderIsGone(lock)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (wallTime() - started > GIVE_UP_MS) throw new Error(`${lock} is held by another process (pid ${readFileSync(lock, 'utf8')})`);
      await sleep(20);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
