import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';

/**
 * The data directory holds the token signing key and app secrets: it is created 0700, and one
 * of ours that is wider is narrowed (a directory of another user's, e.g. a mounted volume, is
 * left as it is: its owner decides).
 */
export function preparePrivateDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  const mine = process.getuid === undefined || st.uid === process.getuid();
  if (mine && (st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** Creates `path` 0600 if it is missing, and narrows it to 0600 if it is ours and wider. */
export function ensurePrivateFile(path: string): void {
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  const st = statSync(path);
  const mine = process.getuid === undefined || st.uid === process.getuid();
  if (mine && (st.mode & 0o077) !== 0) chmodSync(path, 0o600);
}

/** The database and its WAL and shared-memory files, as far as they exist, made 0600. */
export function privateDatabaseFiles(dbPath: string): void {
  ensurePrivateFile(dbPath);
  for (const extra of [`${dbPath}-wal`, `${dbPath}-shm`, `${dbPath}-journal`]) if (existsSync(extra)) ensurePrivateFile(extra);
}
