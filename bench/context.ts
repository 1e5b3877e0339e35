import type { Row } from './table.js';

export interface BenchContext {
  /** Scratch directory of this run (data dirs, configs, certificates). */
  tmp: string;
  /** Length of one measured load run. */
  seconds: number;
  log(message: string): void;
  /** Raw numbers behind the rows, written to the JSON result. */
  raw: Record<string, unknown>;
  /** The loopback sink every call's notifications go to (bench/sink-child.ts). */
  callbackUri: string;
  /** How many notifications the sink has received so far. */
  notificationsReceived(): Promise<number>;
}

/**
 * Waits until no notification has reached the sink for `quietMs` (at most `maxMs`), so that
 * deliveries set off by creating calls do not run during a measurement.
 */
export async function notificationsSettled(ctx: BenchContext, quietMs = 500, maxMs = 30_000): Promise<void> {
  const end = Date.now() + maxMs;
  let last = await ctx.notificationsReceived();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = await ctx.notificationsReceived();
    if (now === last) return;
    last = now;
  }
}

export type { Row };
