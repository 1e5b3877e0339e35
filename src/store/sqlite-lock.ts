import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { StoreLockedError } from './store-errors.js';

/** Lock files this process holds, so a second store in the same process is refused too. */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The SQLite store has one writer: a second server on the same --data directory would run its
 * own scheduler and dispatcher on the same calls (double expiries, duplicate deliveries), so it
 * must not start. SQLite's own locks cannot say this (WAL lets several connections write), so
 * a lock file names the owner: `pid host`. A file left by a process that is gone (kill -9, a
 * container restart reusing the pid) is taken over; one from another host is never guessed at.
 */
export function acquireDataDirLock(dataDir: string): () => void {
  const path = join(dataDir, 'callkeeper.lock');
  const me = `${process.pid} ${hostname()}\n`;
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, me);
      closeSync(fd);
      held.add(path);
      return () => {
        held.delete(path);
        try {
          if (readFileSync(path, 'utf8') === me) unlinkSync(path);
        } catch {
          // Already gone.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = '';
    try {
      owner = readFileSync(path, 'utf8');
    } catch {
      continue; // Released meanwhile: try again.
    }
    const [pidText = '', host = ''] = owner.trim().split(' ');
    const pid = Number(pidText);
    const ours = host === hostname();
    const running = ours && Number.isInteger(pid) && pid > 0 && (pid === process.pid ? held.has(path) : alive(pid));
    if (running || !ours) {
      throw new StoreLockedError(
        `${dataDir} is in use by another callkeeper (pid ${pidText || '?'} on ${host || '?'}; lock file ${path}). ` +
          'Two servers on one --data directory would both end and notify the same calls: stop the other one, ' +
          'use another --data directory, or share state between instances with --store redis://...' +
          (ours ? '' : ' If that host no longer runs it, delete the lock file.'),
      );
    }
    try {
      unlinkSync(path); // Stale: its owner is gone.
    } catch {
      // Someone else took it over first; the next round sees theirs.
    }
  }
  throw new StoreLockedError(`could not take the lock ${path}`);
}
