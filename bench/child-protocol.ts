/** Messages between the bench and its server children (IPC). */
export type ParentMessage = { type: 'stats' } | { type: 'expiries' } | { type: 'received' } | { type: 'loopStart' } | { type: 'loopStop' };

export type ChildReply =
  | { type: 'ready'; url: string }
  /** Event-loop delay watching began (monitorEventLoopDelay, 1 ms resolution). */
  | { type: 'loopStart' }
  /** The server's own event-loop delay since loopStart (ms); watching stops. */
  | { type: 'loopStop'; p50Ms: number; p99Ms: number; maxMs: number }
  /** From the callback sink: notifications received so far. */
  | { type: 'received'; count: number }
  | {
      type: 'stats';
      rss: number;
      now: number;
      /** Calls ended for inactivity so far. */
      expired: number;
      /** CPU time the process has used so far (user + system), microseconds. */
      cpuUs: number;
    }
  | {
      type: 'expiries';
      /** Deadline (virtual ms) of each call ended for inactivity, in the order they ended. */
      deadlines: number[];
      /** How long after its deadline each was ended, ms. */
      lags: number[];
      lastEndAt: number;
      now: number;
    };

/**
 * A reference server child (bare node:http, bare Fastify): answers the bench's `stats` with its
 * RSS and CPU time (it ends no calls), then says it is ready on `port`.
 */
export function serveReference(port: number): void {
  const send = (m: ChildReply) => process.send?.(m);
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'stats') {
      const cpu = process.cpuUsage();
      send({ type: 'stats', rss: process.memoryUsage().rss, now: Date.now(), expired: 0, cpuUs: cpu.user + cpu.system });
    }
  });
  send({ type: 'ready', url: `http://127.0.0.1:${port}` });
}
