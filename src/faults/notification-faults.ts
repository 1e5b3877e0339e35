import type { DeliveryFault } from '../notifications/dispatcher.js';
import type { OutboxEntry } from '../store/call-store.js';
import type { FaultInjector } from './fault-injector.js';

function pathOf(uri: string): string {
  try {
    return new URL(uri).pathname;
  } catch {
    return '';
  }
}

/**
 * Fault rules with `target: "notifications"` as the dispatcher's beforeDelivery: a status or
 * reset drops the attempt unsent (the outbox then retries it, keeping the call's order); a
 * latency delays it.
 */
export function notificationFaults(injector: FaultInjector): (e: OutboxEntry) => Promise<DeliveryFault | undefined> {
  return async (e) => {
    const rule = await injector.pick('notifications', {
      method: 'POST',
      path: pathOf(e.callbackUri),
      appId: e.owner.appId,
      callId: e.callId,
    });
    if (!rule) return undefined;
    const { status, reset, latencyMs } = rule.effect;
    const fault: DeliveryFault = {};
    if (latencyMs) fault.latencyMs = latencyMs;
    if (status !== undefined) fault.drop = { statusCode: status, error: `HTTP ${status} (fault rule ${rule.id})` };
    else if (reset) fault.drop = { statusCode: null, error: `connection reset (fault rule ${rule.id})` };
    return fault;
  };
}
