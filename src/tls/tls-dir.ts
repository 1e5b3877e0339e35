import { join } from 'node:path';
import { userStateDir } from './private-dir.js';

/** The TLS directory of a --memory server without --tls-dir: per user, reused across runs. */
export function defaultMemoryTlsDir(): string {
  return join(userStateDir(), 'tls');
}

/** Where --memory servers keep their signing keys: per user, reused across runs. */
export function defaultMemoryKeyDir(): string {
  return join(userStateDir(), 'signing-keys');
}
