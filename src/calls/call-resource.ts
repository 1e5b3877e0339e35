import type { CallRecord, CallState } from './call-types.js';

/**
 * callMediaState (call.md): for a call with audio, `active` once media flows (established) and
 * `inactive` before and after; none for a call without audio. Bots (the official samples) wait
 * for `active` before they play prompts or record (docs/decisions.md, "mediaState").
 */
export function mediaStateOf(call: CallRecord, state: CallState = call.state): { audio: 'active' | 'inactive' } | undefined {
  const modalities = call.resource.requestedModalities;
  if (!Array.isArray(modalities) || !modalities.includes('audio')) return undefined;
  return { audio: state === 'established' ? 'active' : 'inactive' };
}

/**
 * A call as Graph puts it on the wire: the stored creation properties, then the live ones.
 * `serviceRoot` is the Graph root the client used (https://host/v1.0), for @odata.context.
 */
export function toGraphCall(call: CallRecord, serviceRoot: string): Record<string, unknown> {
  // Object-typed properties are omitted when unset rather than null: Graph's schema does not
  // declare them nullable (test/openapi-conformance.test.ts holds this).
  const out: Record<string, unknown> = {
    '@odata.context': `${serviceRoot}/$metadata#communications/calls/$entity`,
    '@odata.type': '#microsoft.graph.call',
    subject: null,
    callChainId: null,
    callRoutes: [],
    ...call.resource,
    id: call.id,
    state: call.state,
    direction: call.direction,
  };
  const media = mediaStateOf(call);
  if (media) out.mediaState = { '@odata.type': '#microsoft.graph.callMediaState', ...media };
  if (call.resultInfo) out.resultInfo = { '@odata.type': '#microsoft.graph.resultInfo', ...call.resultInfo };
  return out;
}
