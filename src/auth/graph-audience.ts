/** Graph's own application id: tokens may name it instead of the URL as audience. */
export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';

export const GRAPH_RESOURCE = 'https://graph.microsoft.com';

/** Audiences a global-cloud Graph accepts (FACTS.md §7). */
export const GRAPH_AUDIENCES = [GRAPH_RESOURCE, `${GRAPH_RESOURCE}/`, GRAPH_APP_ID];

/** The v1 STS issuer Graph app-only tokens carry. */
export function issuerFor(tenantId: string): string {
  return `https://sts.windows.net/${tenantId}/`;
}
