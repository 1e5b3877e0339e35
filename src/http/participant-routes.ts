import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Cloud } from '../auth/clouds.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { BotActionService } from '../calls/bot-actions.js';
import { toGraphParticipant } from '../calls/participants.js';
import { graphRoots, ownerOf, principalOf, serviceRoot } from './graph-routes.js';
import { sendOperation } from './operation-routes.js';
import { causeOf } from './request-context.js';
import { type Req, resource } from './resource.js';
import { GRAPH_JSON } from './wire.js';

export interface ParticipantRouteDeps {
  botActions: BotActionService;
  verifiers: ReadonlyMap<Cloud['name'], TokenVerifier>;
}

const param = (req: Req, name: string): string => (req.params as unknown as Record<string, string>)[name] ?? '';

/** A call's roster (participant.md, call-list-participants.md, participant-get/-invite/-mute/-delete.md). */
export function registerParticipantRoutes(app: FastifyInstance, deps: ParticipantRouteDeps): void {
  const { botActions } = deps;
  const actor = (req: Req) => {
    const p = principalOf(req);
    return { owner: { appId: p.appId, tenantId: p.tenantId }, roles: p.roles, cause: causeOf(req) };
  };

  const list = async (req: Req, reply: FastifyReply) => {
    const roster = await botActions.listParticipants(ownerOf(req), req.params.id);
    return reply.type(GRAPH_JSON).send({
      '@odata.context': `${serviceRoot(req)}/$metadata#communications/calls('${req.params.id}')/participants`,
      value: roster.map(toGraphParticipant),
    });
  };
  const get = async (req: Req, reply: FastifyReply) => {
    const p = await botActions.getParticipant(ownerOf(req), req.params.id, param(req, 'pid'));
    return reply.type(GRAPH_JSON).send({
      '@odata.context': `${serviceRoot(req)}/$metadata#communications/calls('${req.params.id}')/participants/$entity`,
      ...toGraphParticipant(p),
    });
  };
  const remove = async (req: Req, reply: FastifyReply) => {
    await botActions.removeParticipant(ownerOf(req), req.params.id, param(req, 'pid'));
    return reply.code(204).send();
  };
  const mute = async (req: Req, reply: FastifyReply) =>
    sendOperation(req, reply, await botActions.muteParticipant(actor(req), req.params.id, param(req, 'pid'), req.body));
  const invite = async (req: Req, reply: FastifyReply) =>
    sendOperation(req, reply, await botActions.invite(actor(req), req.params.id, req.body));

  for (const { root, opts } of graphRoots(deps.verifiers)) {
    const base = `${root}/communications/calls/:id/participants`;
    resource(app, base, { GET: list }, opts);
    resource(
      app,
      `${base}/$count`,
      {
        GET: async (req: Req, reply: FastifyReply) =>
          reply.type('text/plain').send(String((await botActions.listParticipants(ownerOf(req), req.params.id)).length)),
      },
      opts,
    );
    resource(app, `${base}/invite`, { POST: invite }, opts);
    resource(app, `${base}/microsoft.graph.invite`, { POST: invite }, opts);
    resource(app, `${base}/:pid`, { GET: get, DELETE: remove }, opts);
    resource(app, `${base}/:pid/mute`, { POST: mute }, opts);
    resource(app, `${base}/:pid/microsoft.graph.mute`, { POST: mute }, opts);
  }
}
