/**
 * The national clouds (https://learn.microsoft.com/graph/deployments). One callkeeper serves all four side by side: the global
 * cloud at the root, each other under its path prefix, each with its own token audience and
 * issuer, so a token from one cloud is refused by another, as in Graph.
 */
export interface Cloud {
  name: 'global' | 'usgov' | 'dod' | 'china';
  /** Path prefix of this cloud's Graph API and login authority ('' for global). */
  prefix: string;
  displayName: string;
  /** The Graph resource: token audience and `scope` prefix. */
  graphResource: string;
  /** The real Graph host and login host, for documentation. */
  graphHost: string;
  loginHost: string;
  /** Whether the calls API (and keepAlive) exists in this cloud. */
  callsAvailable: boolean;
  /** The `iss` of app-only Graph tokens in this cloud. */
  issuer(tenantId: string): string;
}

/** Graph's own application id: global tokens may name it instead of the URL as audience. */
export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';

export const CLOUDS: readonly Cloud[] = [
  {
    name: 'global',
    prefix: '',
    displayName: 'Global',
    graphResource: 'https://graph.microsoft.com',
    graphHost: 'graph.microsoft.com',
    loginHost: 'login.microsoftonline.com',
    callsAvailable: true,
    issuer: (tid) => `https://sts.windows.net/${tid}/`,
  },
  {
    name: 'usgov',
    prefix: '/usgov',
    displayName: 'US Government L4',
    graphResource: 'https://graph.microsoft.us',
    graphHost: 'graph.microsoft.us',
    loginHost: 'login.microsoftonline.us',
    callsAvailable: true,
    issuer: (tid) => `https://login.microsoftonline.us/${tid}/`,
  },
  {
    name: 'dod',
    prefix: '/dod',
    displayName: 'US Government L5 (DoD)',
    graphResource: 'https://dod-graph.microsoft.us',
    graphHost: 'dod-graph.microsoft.us',
    loginHost: 'login.microsoftonline.us',
    callsAvailable: true,
    issuer: (tid) => `https://login.microsoftonline.us/${tid}/`,
  },
  {
    name: 'china',
    prefix: '/china',
    displayName: 'China (21Vianet)',
    graphResource: 'https://microsoftgraph.chinacloudapi.cn',
    graphHost: 'microsoftgraph.chinacloudapi.cn',
    loginHost: 'login.chinacloudapi.cn',
    callsAvailable: false,
    issuer: (tid) => `https://sts.chinacloudapi.cn/${tid}/`,
  },
];

export const GLOBAL: Cloud = CLOUDS[0] as Cloud;

/** Audiences a cloud's Graph accepts. */
export function audiencesOf(cloud: Cloud): string[] {
  const base = [cloud.graphResource, `${cloud.graphResource}/`];
  return cloud.name === 'global' ? [...base, GRAPH_APP_ID] : base;
}

/** The `.default` scopes a cloud's token endpoint grants for Graph. */
export function graphScopesOf(cloud: Cloud): Set<string> {
  const scopes = [`${cloud.graphResource}/.default`];
  if (cloud.name === 'global') scopes.push(`${GRAPH_APP_ID}/.default`);
  return new Set(scopes);
}

/** The cloud whose prefix starts `path`, and the rest of the path. */
export function cloudOfPath(path: string): { cloud: Cloud; rest: string } {
  for (const cloud of CLOUDS) {
    if (cloud.prefix && (path === cloud.prefix || path.startsWith(`${cloud.prefix}/`)))
      return { cloud, rest: path.slice(cloud.prefix.length) };
  }
  return { cloud: GLOBAL, rest: path };
}
