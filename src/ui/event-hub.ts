import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { CallObserver, ChangeType } from '../calls/call-events.js';
import type { CallSummary } from '../calls/call-types.js';
import type { Clock } from '../clock/clock.js';
import { renderNotifications } from '../notifications/render.js';
import type { DeliveryAttempt, OutboxEntry } from '../store/call-store.js';

/** Most dashboards (or curl -N) listening at once; more get 503 from the route. */
const MAX_LISTENERS = 100;

/**
 * This instance's events as Server-Sent Events (GET /_callkeeper/events): call changes and
 * delivery attempts. Events are nudges and a live log; the dashboard reads state from the
 * store, so with several instances it shows all of them whichever one it talks to.
 */
export class EventHub implements CallObserver {
  private readonly listeners = new Set<ServerResponse>();
  private nextId = 1;

  /** Events carry the (virtual) time they happened at, so the dashboard's log shows the server's clock. */
  constructor(private readonly clock: Pick<Clock, 'now'>) {}

  onCallChanged(call: CallSummary, change: ChangeType): void {
    this.publish('call', { callId: call.id, change, state: call.state, resultInfo: call.resultInfo });
  }

  delivery(e: OutboxEntry, a: DeliveryAttempt): void {
    this.publish('delivery', {
      callId: e.callId,
      seq: e.seq,
      state: renderNotifications(e.fact).at(-1)?.resourceData.state,
      attempt: a.attempt,
      outcome: a.outcome,
      statusCode: a.statusCode,
    });
  }

  publish(event: string, data: unknown): void {
    if (this.listeners.size === 0) return;
    const stamped = { at: new Date(this.clock.now()).toISOString(), ...(data as object) };
    const frame = `id: ${this.nextId++}\nevent: ${event}\ndata: ${JSON.stringify(stamped)}\n\n`;
    for (const res of this.listeners) res.write(frame);
  }

  get full(): boolean {
    return this.listeners.size >= MAX_LISTENERS;
  }

  /** Takes over a hijacked response as an event stream until the client goes or the app closes. */
  add(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': callkeeper events\n\n');
    this.listeners.add(res);
    res.on('close', () => this.listeners.delete(res));
  }

  /** Ends every stream (the app is closing: open streams would hold it up). */
  closeAll(): void {
    for (const res of this.listeners) res.end();
    this.listeners.clear();
  }

  register(app: FastifyInstance): void {
    app.addHook('preClose', async () => this.closeAll());
  }
}
