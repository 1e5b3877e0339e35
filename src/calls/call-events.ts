import type { CallRecord } from './call-types.js';

export type ChangeType = 'created' | 'updated' | 'deleted';

/**
 * Told of every state change after it is stored. The notifier (callbacks to the bot) and
 * the scheduler listen here; they must not throw.
 */
export interface CallObserver {
  onCallChanged(call: CallRecord, change: ChangeType): void;
}
