import { createHash } from 'node:crypto';
import type { OutboxEntry } from '../store/outbox-port.js';
import { renderNotifications } from './render.js';

/** What Graph's calling service sends as User-Agent on notifications (seen in bot logs). */
export const NOTIFICATION_USER_AGENT = 'Microsoft-Skype/3.0,(Calling/1.0)';

/** A GUID (version-4 layout) derived from `text`: the same text always gives the same GUID. */
export function guidOf(text: string): string {
  const b = createHash('sha256').update(text).digest();
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * The request headers of a notification POST, shaped like Graph's (docs/decisions.md,
 * "Notification headers"): a GUID `client-request-id`, the same on every retry of one
 * notification so a bot can drop duplicates; `scenario-id`, one GUID per call; the call's chain
 * id in `x-microsoft-skype-chain-id` when the notification shows it; Skype's User-Agent.
 */
export function notificationHeaders(e: OutboxEntry, token: string): Record<string, string> {
  const data = renderNotifications(e.fact)[0]?.resourceData as Record<string, unknown> | undefined;
  const chainId = typeof data?.callChainId === 'string' ? data.callChainId : undefined;
  return {
    'content-type': 'application/json',
    authorization: `Bearer ${token}`,
    'client-request-id': guidOf(`notification:${e.callId}:${e.seq}`),
    'scenario-id': guidOf(`scenario:${e.callId}`),
    ...(chainId ? { 'x-microsoft-skype-chain-id': chainId } : {}),
    'user-agent': NOTIFICATION_USER_AGENT,
  };
}
