import type { CallkeeperConfig } from '../src/server.js';

/**
 * The run's signing-key directory (test/run-tests.mjs), unless the config names its own or says
 * `signingKeyDir: undefined` (a test of how a store makes keys): a fresh store then signs with
 * the run's keys rather than making two RSA keys of its own.
 */
export function suiteKeys(config: Partial<CallkeeperConfig> = {}): { signingKeyDir?: string } {
  const dir = process.env.CALLKEEPER_TEST_KEY_DIR;
  return dir !== undefined && !('signingKeyDir' in config) ? { signingKeyDir: dir } : {};
}
