import type { CallRecord } from './call-types.js';

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
  if (call.resultInfo) out.resultInfo = { '@odata.type': '#microsoft.graph.resultInfo', ...call.resultInfo };
  return out;
}
