import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { CliError } from './options.js';

/**
 * Writes the ready file atomically (a temporary file renamed into place): whoever polls for
 * it never reads half a JSON document.
 */
export function writeReadyFile(path: string, content: Record<string, unknown>, label: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CliError(`${label}: cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** On a clean stop the ready file goes: a stale one would point at a server that is gone. */
export function removeReadyFile(path: string): void {
  rmSync(path, { force: true });
}
