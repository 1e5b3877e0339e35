import { ClientSecretCredential } from '@azure/identity';
import { HttpMethod, RequestInformation } from '@microsoft/kiota-abstractions';
import { AzureIdentityAuthenticationProvider } from '@microsoft/kiota-authentication-azure';
import { Client, GraphError } from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js';
import { GraphRequestAdapter } from '@microsoft/msgraph-sdk';
import {
  type Call,
  createCallFromDiscriminatorValue,
  type ServiceHostedMediaConfig,
  serializeCall,
} from '@microsoft/msgraph-sdk/models/index.js';
import { createODataErrorFromDiscriminatorValue, type ODataError } from '@microsoft/msgraph-sdk/models/oDataErrors/index.js';

/** Where a flow runs: a local callkeeper (with a control API to move time) or real Graph. */
export interface FlowTarget {
  /** Graph root including version, e.g. https://127.0.0.1:4546/v1.0 or https://graph.microsoft.com/v1.0 */
  graphUrl: string;
  /** authorityHost for @azure/identity, e.g. https://127.0.0.1:4546/usgov or https://login.microsoftonline.com */
  authority: string;
  /** The Graph resource whose .default scope to ask for. */
  resource: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  callbackUri: string;
  targetUserId: string;
  /**
   * Lets `ms` of the server's virtual time pass (callkeeper only): moves its clock, or, on a
   * server with --time-scale, waits until its clock has moved. Without it the flow ends the
   * call by hanging up.
   */
  advance?: (ms: number) => Promise<void>;
}

export interface FlowResult {
  callId: string;
  createdState: string;
  keepAliveOk: boolean;
  /** How the call ended: 45 virtual minutes without keepAlive, or hung up (live). */
  endedBy: 'keepAlive timeout' | 'hang-up';
  afterEndStatus: number;
  afterEndCode: string;
}

function credentialFor(t: FlowTarget): ClientSecretCredential {
  return new ClientSecretCredential(t.tenantId, t.clientId, t.clientSecret, { authorityHost: t.authority, disableInstanceDiscovery: true });
}

const callPayload = (t: FlowTarget) => ({
  '@odata.type': '#microsoft.graph.call',
  callbackUri: t.callbackUri,
  requestedModalities: ['audio'],
  mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
  targets: [
    {
      '@odata.type': '#microsoft.graph.invitationParticipantInfo',
      identity: { user: { '@odata.type': '#microsoft.graph.identity', id: t.targetUserId } },
    },
  ],
});

function graphClientFor(t: FlowTarget): Client {
  const graph = new URL(t.graphUrl);
  const version = graph.pathname.split('/').pop() ?? 'v1.0';
  return Client.initWithMiddleware({
    baseUrl: `${graph.origin}${graph.pathname.slice(0, -version.length)}`,
    defaultVersion: version,
    // The client sends tokens only to Graph's hosts and these (hostname, no port).
    customHosts: new Set([graph.hostname]),
    authProvider: new TokenCredentialAuthenticationProvider(credentialFor(t), { scopes: [`${t.resource}/.default`] }),
  });
}

export interface HoursResult {
  callId: string;
  keepAlives: number;
  /** keepAlives that failed, as "#n: status code message". */
  failures: string[];
  /** The call's state read with the same client at the end. */
  finalState: string;
}

/**
 * A bot that keeps one call for `hours` hours of the server's time with the Graph JS client:
 * a keepAlive every 15 minutes, one ClientSecretCredential (MSAL caches its token by the wall
 * clock) for the whole run.
 */
export async function graphClientHoursFlow(t: FlowTarget, hours: number): Promise<HoursResult> {
  if (!t.advance) throw new Error('this flow needs a callkeeper (CK_FLOW_CONTROL_URL)');
  const client = graphClientFor(t);
  const call = (await client.api('/communications/calls').post(callPayload(t))) as { id: string };
  const failures: string[] = [];
  const rounds = hours * 4;
  for (let i = 1; i <= rounds; i++) {
    await t.advance(15 * 60_000);
    try {
      await client.api(`/communications/calls/${call.id}/keepAlive`).post(undefined);
    } catch (err) {
      if (!(err instanceof GraphError)) throw err;
      failures.push(`#${i}: ${err.statusCode} ${String(err.code)} ${err.message}`);
    }
  }
  const final = (await client.api(`/communications/calls/${call.id}`).get()) as { state: string };
  return { callId: call.id, keepAlives: rounds, failures, finalState: final.state };
}

/** @microsoft/microsoft-graph-client 3.x with @azure/identity: create, keepAlive, end, keepAlive -> GraphError 404. */
export async function graphClientFlow(t: FlowTarget): Promise<FlowResult> {
  const client = graphClientFor(t);
  const call = (await client.api('/communications/calls').post(callPayload(t))) as { id: string; state: string };
  await client.api(`/communications/calls/${call.id}/keepAlive`).post(undefined);
  const endedBy = await endCall(t, () => client.api(`/communications/calls/${call.id}`).delete());
  try {
    await client.api(`/communications/calls/${call.id}/keepAlive`).post(undefined);
    throw new Error('keepAlive after the end succeeded');
  } catch (err) {
    if (!(err instanceof GraphError)) throw err;
    return {
      callId: call.id,
      createdState: call.state,
      keepAliveOk: true,
      endedBy,
      afterEndStatus: err.statusCode,
      afterEndCode: String(err.code),
    };
  }
}

/** The Kiota core: GraphRequestAdapter, RequestInformation built by hand, errors mapped to ODataError. */
export async function kiotaFlow(t: FlowTarget): Promise<FlowResult> {
  const host = new URL(t.graphUrl).hostname;
  const auth = new AzureIdentityAuthenticationProvider(credentialFor(t), [`${t.resource}/.default`], undefined, new Set([host]));
  const adapter = new GraphRequestAdapter(auth);
  adapter.baseUrl = t.graphUrl;
  const errors = { XXX: createODataErrorFromDiscriminatorValue };
  const build = (method: HttpMethod, template: string, id?: string) => {
    const info = new RequestInformation(method, template);
    info.pathParameters = { baseurl: adapter.baseUrl, ...(id ? { 'call%2Did': id } : {}) };
    info.headers.tryAdd('Accept', 'application/json');
    return info;
  };
  const create = build(HttpMethod.POST, '{+baseurl}/communications/calls');
  // Kiota serializes its typed models: the type discriminator is `odataType`.
  const body: Call = {
    odataType: '#microsoft.graph.call',
    callbackUri: t.callbackUri,
    requestedModalities: ['audio'],
    mediaConfig: { odataType: '#microsoft.graph.serviceHostedMediaConfig' } as ServiceHostedMediaConfig,
    targets: [
      {
        odataType: '#microsoft.graph.invitationParticipantInfo',
        identity: { odataType: '#microsoft.graph.identitySet', user: { odataType: '#microsoft.graph.identity', id: t.targetUserId } },
      },
    ],
  };
  create.setContentFromParsable(adapter, 'application/json', body, serializeCall);
  const call = await adapter.send<Call>(create, createCallFromDiscriminatorValue, errors);
  const id = call?.id;
  if (!id) throw new Error('create returned no call id');
  const keepAlive = () =>
    adapter.sendNoResponseContent(build(HttpMethod.POST, '{+baseurl}/communications/calls/{call%2Did}/keepAlive', id), errors);
  await keepAlive();
  const endedBy = await endCall(t, () =>
    adapter.sendNoResponseContent(build(HttpMethod.DELETE, '{+baseurl}/communications/calls/{call%2Did}', id), errors),
  );
  try {
    await keepAlive();
    throw new Error('keepAlive after the end succeeded');
  } catch (err) {
    const odata = err as ODataError;
    if (typeof odata.responseStatusCode !== 'number') throw err;
    return {
      callId: id,
      createdState: String(call?.state),
      keepAliveOk: true,
      endedBy,
      afterEndStatus: odata.responseStatusCode,
      afterEndCode: String(odata.errorEscaped?.code),
    };
  }
}

/** Locally: 45 virtual minutes pass without a keepAlive. Live: hang up (nobody waits 45 minutes). */
async function endCall(t: FlowTarget, hangUp: () => Promise<unknown>): Promise<FlowResult['endedBy']> {
  if (t.advance) {
    await t.advance(45 * 60_000);
    return 'keepAlive timeout';
  }
  await hangUp();
  return 'hang-up';
}
