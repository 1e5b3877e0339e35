import { randomUUID } from 'node:crypto';
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { ensurePrivateDir } from '../tls/private-dir.js';
import { type KeyMaker, newKey } from './signing-key.js';

/**
 * Signing keys kept in a directory of the user's (`serve --memory`: the per-user state
 * directory, docs/decisions.md "Signing keys of in-memory servers"), so that a restart keeps
 * them: a bot's cached access token and its cached copy of the notification keys stay valid, and
 * a start makes no RSA key (0.1 to 0.6 s of CPU). One file per key, `<name>.jwk`, mode 0600, in a
 * 0700 directory checked as the local CA's key directory is. Two servers starting at once agree:
 * the first file linked into place wins, and the other reads it.
 */
export function keyDirectory(dir: string): KeyMaker {
  return async (name) => {
    ensurePrivateDir(dir);
    const file = join(dir, `${name}.jwk`);
    const stored = readKey(file);
    if (stored !== 'none' && stored !== 'unusable') return stored;
    const fresh = await newKey(name);
    const temp = join(dir, `.${name}.${randomUUID()}.tmp`);
    writeFileSync(temp, JSON.stringify(fresh), { mode: 0o600 });
    if (stored === 'unusable') {
      // Not a key (a truncated write, an edit): replaced.
      renameSync(temp, file);
      return fresh;
    }
    try {
      linkSync(temp, file);
      return fresh;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const theirs = readKey(file);
      return theirs === 'none' || theirs === 'unusable' ? fresh : theirs;
    } finally {
      rmSync(temp, { force: true });
    }
  };
}

/** The private RSA JWK in `file`; 'none' if there is no file, 'unusable' if what is there is not one. */
function readKey(file: string): JWK | 'none' | 'unusable' {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw err;
  }
  try {
    const jwk = JSON.parse(text) as JWK;
    return jwk.kty === 'RSA' && typeof jwk.d === 'string' && typeof jwk.n === 'string' ? jwk : 'unusable';
  } catch {
    return 'unusable';
  }
}
