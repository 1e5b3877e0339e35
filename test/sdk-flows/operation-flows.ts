import { ClientSecretCredential } from '@azure/identity';
import { HttpMethod, RequestInformation, type SerializationWriter } from '@microsoft/kiota-abstractions';
import { AzureIdentityAuthenticationProvider } from '@microsoft/kiota-authentication-azure';
import { Client, GraphError } from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js';
import { GraphRequestAdapter } from '@microsoft/msgraph-sdk';
import {
  type Call,
  type CommsOperation,
  createCallFromDiscriminatorValue,
  createCommsOperationFromDiscriminatorValue,
  createPlayPromptOperationFromDiscriminatorValue,
  type MediaPrompt,
  type PlayPromptOperation,
  type ServiceHostedMediaConfig,
  serializeCall,
  serializeMediaPrompt,
} from '@microsoft/msgraph-sdk/models/index.js';
import { createODataErrorFromDiscriminatorValue, type ODataError } from '@microsoft/msgraph-sdk/models/oDataErrors/index.js';
import type { FlowTarget } from './flows.js';

/** What a bot saw of one playPrompt, through an SDK. */
export interface PromptFlowResult {
  callId: string;
  operationId: string;
  /** The operation's odata type as the SDK parsed it. */
  operationType: string;
  startedStatus: string;
  /** The Location header's operation id equals the body's (graph-client only; Kiota hides headers). */
  locationMatches: boolean | null;
  clientContext: string;
  finishedStatus: string;
  resultCode: number | null;
  /** Reading the operation after the call ended. */
  afterEndStatus: number;
  afterEndCode: string;
}

const PROMPT_URI = 'https://bot.contoso.com/audio/welcome.wav';

function credentialFor(t: FlowTarget): ClientSecretCredential {
  return new ClientSecretCredential(t.tenantId, t.clientId, t.clientSecret, { authorityHost: t.authority, disableInstanceDiscovery: true });
}

function needAdvance(t: FlowTarget): (ms: number) => Promise<void> {
  if (!t.advance) throw new Error('this flow needs a callkeeper (CK_FLOW_CONTROL_URL)');
  return t.advance;
}

/** @microsoft/microsoft-graph-client: create, wait for establishment, playPrompt, read the operation until done, hang up. */
export async function graphClientPromptFlow(t: FlowTarget): Promise<PromptFlowResult> {
  const advance = needAdvance(t);
  const graph = new URL(t.graphUrl);
  const version = graph.pathname.split('/').pop() ?? 'v1.0';
  const client = Client.initWithMiddleware({
    baseUrl: `${graph.origin}${graph.pathname.slice(0, -version.length)}`,
    defaultVersion: version,
    customHosts: new Set([graph.hostname]),
    authProvider: new TokenCredentialAuthenticationProvider(credentialFor(t), { scopes: [`${t.resource}/.default`] }),
  });
  const call = (await client.api('/communications/calls').post({
    '@odata.type': '#microsoft.graph.call',
    callbackUri: t.callbackUri,
    requestedModalities: ['audio'],
    mediaConfig: { '@odata.type': '#microsoft.graph.serviceHostedMediaConfig' },
    targets: [{ '@odata.type': '#microsoft.graph.invitationParticipantInfo', identity: { user: { id: t.targetUserId } } }],
  })) as { id: string };
  await advance(2_000);
  const raw = (await client
    .api(`/communications/calls/${call.id}/playPrompt`)
    .responseType('raw' as never)
    .post({
      clientContext: 'graph-client',
      prompts: [{ '@odata.type': '#microsoft.graph.mediaPrompt', mediaInfo: { uri: PROMPT_URI } }],
    })) as Response;
  const op = (await raw.json()) as { '@odata.type': string; id: string; status: string; clientContext: string };
  const location = raw.headers.get('location') ?? '';
  await advance(10_000);
  const done = (await client.api(`/communications/calls/${call.id}/operations/${op.id}`).get()) as {
    status: string;
    resultInfo?: { code: number };
  };
  await client.api(`/communications/calls/${call.id}`).delete();
  let afterEndStatus = 0;
  let afterEndCode = '';
  try {
    await client.api(`/communications/calls/${call.id}/operations/${op.id}`).get();
  } catch (err) {
    if (!(err instanceof GraphError)) throw err;
    afterEndStatus = err.statusCode;
    afterEndCode = String(err.code);
  }
  return {
    callId: call.id,
    operationId: op.id,
    operationType: op['@odata.type'],
    startedStatus: op.status,
    locationMatches: location.endsWith(`/communications/calls/${call.id}/operations/${op.id}`),
    clientContext: op.clientContext,
    finishedStatus: done.status,
    resultCode: done.resultInfo?.code ?? null,
    afterEndStatus,
    afterEndCode,
  };
}

/** The Kiota core: RequestInformation by hand, the typed models of @microsoft/msgraph-sdk to write and parse. */
export async function kiotaPromptFlow(t: FlowTarget): Promise<PromptFlowResult> {
  const advance = needAdvance(t);
  const host = new URL(t.graphUrl).hostname;
  const adapter = new GraphRequestAdapter(
    new AzureIdentityAuthenticationProvider(credentialFor(t), [`${t.resource}/.default`], undefined, new Set([host])),
  );
  adapter.baseUrl = t.graphUrl;
  const errors = { XXX: createODataErrorFromDiscriminatorValue };
  const build = (method: HttpMethod, template: string, params: Record<string, string> = {}) => {
    const info = new RequestInformation(method, template);
    info.pathParameters = { baseurl: adapter.baseUrl, ...params };
    info.headers.tryAdd('Accept', 'application/json');
    return info;
  };
  const create = build(HttpMethod.POST, '{+baseurl}/communications/calls');
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
  const callId = call?.id ?? '';
  await advance(2_000);
  // The body of the playPrompt action, written as the generated request builders write it.
  interface PlayPromptBody {
    prompts: MediaPrompt[];
    clientContext: string;
  }
  const play = build(HttpMethod.POST, '{+baseurl}/communications/calls/{call%2Did}/playPrompt', { 'call%2Did': callId });
  const promptBody: PlayPromptBody = {
    clientContext: 'kiota',
    prompts: [{ odataType: '#microsoft.graph.mediaPrompt', mediaInfo: { odataType: '#microsoft.graph.mediaInfo', uri: PROMPT_URI } }],
  };
  play.setContentFromParsable(
    adapter,
    'application/json',
    promptBody,
    (writer: SerializationWriter, v: Partial<PlayPromptBody> | undefined | null) => {
      writer.writeStringValue('clientContext', v?.clientContext);
      writer.writeCollectionOfObjectValues('prompts', v?.prompts, serializeMediaPrompt);
    },
  );
  const op = await adapter.send<PlayPromptOperation>(play, createPlayPromptOperationFromDiscriminatorValue, errors);
  const opId = op?.id ?? '';
  const readOp = () =>
    adapter.send<CommsOperation>(
      build(HttpMethod.GET, '{+baseurl}/communications/calls/{call%2Did}/operations/{commsOperation%2Did}', {
        'call%2Did': callId,
        'commsOperation%2Did': opId,
      }),
      createCommsOperationFromDiscriminatorValue,
      errors,
    );
  await advance(10_000);
  const done = await readOp();
  await adapter.sendNoResponseContent(
    build(HttpMethod.DELETE, '{+baseurl}/communications/calls/{call%2Did}', { 'call%2Did': callId }),
    errors,
  );
  let afterEndStatus = 0;
  let afterEndCode = '';
  try {
    await readOp();
  } catch (err) {
    const odata = err as ODataError;
    if (typeof odata.responseStatusCode !== 'number') throw err;
    afterEndStatus = odata.responseStatusCode;
    afterEndCode = String(odata.errorEscaped?.code);
  }
  return {
    callId,
    operationId: opId,
    operationType: String(op?.odataType),
    startedStatus: String(op?.status),
    locationMatches: null,
    clientContext: String(op?.clientContext),
    finishedStatus: String(done?.status),
    resultCode: done?.resultInfo?.code ?? null,
    afterEndStatus,
    afterEndCode,
  };
}
