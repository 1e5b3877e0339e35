import type { CallRecord } from './call-types.js';

/**
 * A call as Graph puts it on the wire: the stored creation properties, then the live ones.
 * `serviceRoot` is the Graph root the client used (https://host/v1.0), for @odata.context.
 */
export function toGraphCall(call: CallRecord, serviceRoot: string): Record<string, unknown> {
  return {
    '@odata.context': `${serviceRoot}/$metadata#communications/calls/$entity`,
    '@odata.type': '#microsoft.graph.call',
    subject: null,
    callChainId: null,
    callOptions: null,
    chatInfo: null,
    meetingInfo: null,
    incomingContext: null,
    toneInfo: null,
    transcription: null,
    mediaState: null,
    callRoutes: [],
    ...call.resource,
    id: call.id,
    state: call.state,
    direction: call.direction,
    resultInfo: call.resultInfo && { '@odata.type': '#microsoft.graph.resultInfo', ...call.resultInfo },
  };
}
