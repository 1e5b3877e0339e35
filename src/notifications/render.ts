import { type CallNotification, notificationsFor } from '../calls/call-notifications.js';
import type { CallRecord } from '../calls/call-types.js';
import type { OutboxFact } from '../store/outbox-port.js';

/**
 * What the bot receives for one outbox fact, in order: the store keeps only the fact (which
 * transition, the result, the call as it was), so every store, Lua scripts included, queues the
 * same thing and the wording lives here alone. One fact is one POST whose `value` holds these
 * notifications (see docs/decisions.md).
 */
export function renderNotifications(fact: OutboxFact): CallNotification[] {
  if (fact.transition === 'notification') return [fact.notification];
  const s = fact.snapshot;
  const call: CallRecord = {
    id: s.id,
    owner: s.owner,
    state: s.state,
    direction: s.direction,
    createdAt: 0,
    lastKeepAliveAt: null,
    deadline: null,
    establishAt: null,
    endedAt: null,
    resultInfo: fact.result,
    resource: s.resource,
  };
  switch (fact.transition) {
    case 'created':
      return notificationsFor.created(call);
    case 'answered':
      return notificationsFor.answered(call);
    case 'established':
      return notificationsFor.established(call);
    case 'ended':
      return notificationsFor.ended(call, fact.result ?? { code: 0, subcode: 0, message: '' });
  }
}
