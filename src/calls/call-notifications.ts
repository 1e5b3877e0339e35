import { mediaStateOf } from './call-resource.js';
import type { CallRecord, CallState, ResultInfo } from './call-types.js';

/** One notification the bot must receive: a commsNotification, before it is wrapped and signed. */
export interface CallNotification {
  changeType: 'created' | 'updated' | 'deleted';
  /** The call as the notification shows it (resourceData). */
  resourceData: Record<string, unknown>;
  /**
   * Appended to the call's resourceUrl for notifications about something within the call
   * (`/participants`, `/operations/{id}`); absent for the call itself.
   */
  resourcePath?: string;
  /** A roster notification's resourceData is an array of participants; it replaces resourceData. */
  resourceList?: Record<string, unknown>[];
}

function resourceData(call: CallRecord, state: CallState, resultInfo?: ResultInfo | null): Record<string, unknown> {
  const r = call.resource;
  const media = mediaStateOf(call, state);
  // Like Graph's (call-answer.md, application-post-calls.md): the call's id and OData id on the resource.
  return {
    '@odata.type': '#microsoft.graph.call',
    '@odata.id': `/communications/calls/${call.id}`,
    id: call.id,
    state,
    direction: call.direction,
    ...(media ? { mediaState: { '@odata.type': '#microsoft.graph.callMediaState', ...media } } : {}),
    ...(typeof r.callChainId === 'string' ? { callChainId: r.callChainId } : {}),
    ...(call.direction === 'incoming' && r.source ? { source: r.source } : {}),
    ...(call.direction === 'incoming' && r.requestedModalities ? { requestedModalities: r.requestedModalities } : {}),
    // An incoming call names whom it rings: the bot (call-answer.md, the incoming notification).
    ...(call.direction === 'incoming' && state === 'incoming' && Array.isArray(r.targets) ? { targets: r.targets } : {}),
    // A compliance-recording bot learns whom it records from it (docs/decisions.md, "Policy-based recording calls").
    ...(call.direction === 'incoming' && state === 'incoming' && r.incomingContext ? { incomingContext: r.incomingContext } : {}),
    ...(resultInfo ? { resultInfo: { '@odata.type': '#microsoft.graph.resultInfo', ...resultInfo } } : {}),
  };
}

/**
 * What the bot is told of each transition (https://learn.microsoft.com/graph/api/resources/commsnotification; docs/decisions.md, Notifications of an end). Every store records these in the
 * same transaction as the transition itself, so no acknowledged change loses its notification.
 */
export const notificationsFor = {
  /** A new call: `created/incoming` for an incoming one, `updated/establishing` for an outgoing one. */
  created(call: CallRecord): CallNotification[] {
    return call.state === 'incoming'
      ? [{ changeType: 'created', resourceData: resourceData(call, 'incoming') }]
      : [{ changeType: 'updated', resourceData: resourceData(call, call.state) }];
  },
  /** The bot answered: the call is establishing. */
  answered(call: CallRecord): CallNotification[] {
    return [{ changeType: 'updated', resourceData: resourceData(call, 'establishing') }];
  },
  established(call: CallRecord): CallNotification[] {
    return [{ changeType: 'updated', resourceData: resourceData(call, 'established') }];
  },
  /** Any end: `updated/terminating`, then `deleted/terminated` with the result. */
  ended(call: CallRecord, result: ResultInfo): CallNotification[] {
    return [
      { changeType: 'updated', resourceData: resourceData(call, 'terminating') },
      { changeType: 'deleted', resourceData: resourceData(call, 'terminated', result) },
    ];
  },
};
