import { readFileSync } from 'node:fs';

/** callkeeper's own version, from its package.json (two levels up from src/keeper and dist/keeper alike). */
export const KEEPER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * Sent on every keepAlive. Microsoft asks for a product token it can tell apart in its logs
 * (see docs/decisions.md, "The keeper's request headers").
 */
export const USER_AGENT = `callkeeper/${KEEPER_VERSION}`;
