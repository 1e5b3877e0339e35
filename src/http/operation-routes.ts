import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Cloud } from '../auth/clouds.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { Actor, BotActionService } from '../calls/bot-actions.js';
import { type OperationRecord, toGraphOperation } from '../calls/operations.js';
import { generateWav } from '../media/wav.js';
import { graphRoots, ownerOf, principalOf, serviceRoot } from './graph-routes.js';
import { causeOf } from './request-context.js';
import { type Req, resource } from './resource.js';
import { GRAPH_JSON } from './wire.js';

export interface OperationRouteDeps {
  botActions: BotActionService;
  verifiers: ReadonlyMap<Cloud['name'], TokenVerifier>;
}

/** Where recordings are fetched (recordingLocation), outside Graph's namespace as on Graph. */
export const RECORDINGS_PATH = '/recordings';

const param = (req: Req, name: string): string => (req.params as unknown as Record<string, string>)[name] ?? '';

function operationUrl(req: Req, op: OperationRecord): string {
  return `${serviceRoot(req)}/communications/calls/${op.callId}/operations/${op.id}`;
}

/** `200 OK`, `Location` of the operation, the operation as body (call-playprompt.md and its siblings). */
export function sendOperation(req: Req, reply: FastifyReply, op: OperationRecord) {
  return reply.code(200).header('location', operationUrl(req, op)).type(GRAPH_JSON).send(toGraphOperation(op, 'response'));
}

/** The call's own actions that start operations, its operations, and the recordings they make. */
export function registerOperationRoutes(app: FastifyInstance, deps: OperationRouteDeps): void {
  const { botActions } = deps;
  const actor = (req: Req): Actor => {
    const p = principalOf(req);
    return { owner: { appId: p.appId, tenantId: p.tenantId }, roles: p.roles, cause: causeOf(req) };
  };
  const recordingBase = (req: Req) => `${req.protocol}://${req.host}${RECORDINGS_PATH}`;

  const operationActions: [string, (req: Req) => Promise<OperationRecord>][] = [
    ['playPrompt', (req) => botActions.playPrompt(actor(req), req.params.id, req.body)],
    ['recordResponse', (req) => botActions.recordResponse(actor(req), req.params.id, req.body, recordingBase(req))],
    ['subscribeToTone', (req) => botActions.subscribeToTone(actor(req), req.params.id, req.body)],
    ['mute', (req) => botActions.muteSelf(actor(req), req.params.id, req.body, true)],
    ['unmute', (req) => botActions.muteSelf(actor(req), req.params.id, req.body, false)],
    ['updateRecordingStatus', (req) => botActions.updateRecordingStatus(actor(req), req.params.id, req.body)],
    ['cancelMediaProcessing', (req) => botActions.cancelMediaProcessing(actor(req), req.params.id, req.body)],
    ['sendDtmfTones', (req) => botActions.sendDtmfTones(actor(req), req.params.id, req.body)],
  ];
  const changeRole = async (req: Req, reply: FastifyReply) => {
    await botActions.changeScreenSharingRole(actor(req), req.params.id, req.body);
    return reply.code(204).send();
  };
  const transfer = async (req: Req, reply: FastifyReply) => {
    await botActions.transfer(actor(req), req.params.id, req.body);
    return reply.code(202).send();
  };
  const listOps = async (req: Req, reply: FastifyReply) => {
    const ops = await botActions.listOperations(ownerOf(req), req.params.id);
    return reply.type(GRAPH_JSON).send({
      '@odata.context': `${serviceRoot(req)}/$metadata#communications/calls('${req.params.id}')/operations`,
      value: ops.map((op) => toGraphOperation(op, 'response')),
    });
  };
  const getOp = async (req: Req, reply: FastifyReply) => {
    const op = await botActions.getOperation(ownerOf(req), req.params.id, param(req, 'opId'));
    return reply.type(GRAPH_JSON).send({
      '@odata.context': `${serviceRoot(req)}/$metadata#communications/calls('${req.params.id}')/operations/$entity`,
      ...toGraphOperation(op, 'response'),
    });
  };

  for (const { root, opts } of graphRoots(deps.verifiers)) {
    const call = `${root}/communications/calls/:id`;
    for (const [name, act] of operationActions) {
      const handler = async (req: Req, reply: FastifyReply) => sendOperation(req, reply, await act(req));
      resource(app, `${call}/${name}`, { POST: handler }, opts);
      resource(app, `${call}/microsoft.graph.${name}`, { POST: handler }, opts);
    }
    for (const [name, handler] of [
      ['changeScreenSharingRole', changeRole],
      ['transfer', transfer],
    ] as const) {
      resource(app, `${call}/${name}`, { POST: handler }, opts);
      resource(app, `${call}/microsoft.graph.${name}`, { POST: handler }, opts);
    }
    resource(app, `${call}/operations`, { GET: listOps }, opts);
    resource(
      app,
      `${call}/operations/$count`,
      {
        GET: async (req: Req, reply: FastifyReply) =>
          reply.type('text/plain').send(String((await botActions.listOperations(ownerOf(req), req.params.id)).length)),
      },
      opts,
    );
    resource(app, `${call}/operations/:opId`, { GET: getOp }, opts);
  }

  // call-record.md example 2: GET recordingLocation with `Authorization: Bearer <recordingAccessToken>`.
  resource(app, `${RECORDINGS_PATH}/:id/:opId`, {
    GET: async (req: Req, reply: FastifyReply) => {
      const auth = req.headers.authorization;
      const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
      const { durationMs } = await botActions.recording(req.params.id, param(req, 'opId'), token);
      return reply.type('application/octet-stream').send(generateWav(durationMs));
    },
  });
}
