import { randomUUID } from 'node:crypto';
import type { Cloud } from '../auth/clouds.js';

type CloudName = Cloud['name'];

/** The tag a sovereign cloud's call ids carry (the nibble after the UUID's version). */
const TAGS: Record<Exclude<CloudName, 'global'>, string> = { usgov: '1', dod: '2', china: '3' };
const BY_TAG = new Map(Object.entries(TAGS).map(([cloud, tag]) => [tag, cloud as CloudName]));

/**
 * A new call id that says which cloud the call lives in, so a token of another cloud cannot
 * reach it (docs/decisions.md, "Calls bound to their cloud"): the global cloud's ids are random
 * UUIDs (version 4, as before); a sovereign cloud's are version 8 (RFC 9562's vendor-specific
 * UUID) with the cloud's tag as the nibble after the version. Nothing is stored for it.
 */
export function newCallId(cloud: CloudName = 'global'): string {
  const id = randomUUID();
  if (cloud === 'global') return id;
  return `${id.slice(0, 14)}8${TAGS[cloud]}${id.slice(16)}`;
}

/** The cloud a call id belongs to; any id callkeeper did not mint in a sovereign cloud is global. */
export function cloudOfCallId(id: string): CloudName {
  if (id.length !== 36 || id[14] !== '8') return 'global';
  return BY_TAG.get(id[15] ?? '') ?? 'global';
}
