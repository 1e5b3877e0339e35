import type { CallState } from '../calls/call-types.js';

/**
 * What a conditional write answers. A refusal says why in the same step as the write, so the
 * caller maps it to an error without reading again (a second read would race with other
 * instances, and cost a round trip).
 */
export type Refusal =
  /** No call with that id is live for that owner at `now` (unknown, another app's, ended, or past its deadline). */
  | { ok: false; reason: 'notFound' }
  /** The call is live and the owner's, but not in the state the write needs. */
  | { ok: false; reason: 'wrongState'; state: CallState };

export type WriteResult<T> = { ok: true; value: T } | Refusal;

export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const notFound: Refusal = { ok: false, reason: 'notFound' };
export const wrongState = (state: CallState): Refusal => ({ ok: false, reason: 'wrongState', state });
