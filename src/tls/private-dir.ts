import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Creates `dir` (mode 0700) or checks the one that is there: a real directory (not a symlink),
 * owned by this user, and closed to others (its mode is narrowed to 0700 if it was wider).
 * Throws a message meant for the user otherwise. On Windows there are no uids to check.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory())
    throw new Error(`${dir} is not a directory of its own (a symlink or a file): refusing to use it`);
  const uid = process.getuid?.();
  if (uid === undefined) return;
  if (st.uid !== uid) throw new Error(`${dir} belongs to another user (uid ${st.uid}, you are ${uid}): refusing to keep keys there`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/**
 * Where callkeeper keeps what belongs to the user rather than to a project (the local CA's key,
 * the TLS material of --memory servers): $XDG_STATE_HOME/callkeeper, else
 * ~/.local/state/callkeeper (%LOCALAPPDATA%\callkeeper on Windows), else, without a home
 * directory, a per-user directory in the system temp directory.
 */
export function userStateDir(env: Record<string, string | undefined> = process.env): string {
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'callkeeper');
  if (process.platform === 'win32' && env.LOCALAPPDATA) return join(env.LOCALAPPDATA, 'callkeeper');
  let home = '';
  try {
    home = homedir();
  } catch {
    home = '';
  }
  if (home && home !== '/' && home !== '/nonexistent') return join(home, '.local', 'state', 'callkeeper');
  return join(tmpdir(), `callkeeper-${process.getuid?.() ?? 'user'}`);
}
