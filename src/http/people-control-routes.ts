import type { FastifyInstance, FastifyReply } from 'fastify';
import type { BotActionService } from '../calls/bot-actions.js';
import { validateControlTones } from '../calls/operations.js';
import { type ParticipantPatch, toGraphParticipant } from '../calls/participants.js';
import { type Req, resource } from './resource.js';

export interface PeopleControlDeps {
  botActions: BotActionService;
}

const param = (req: Req, name: string): string => (req.params as unknown as Record<string, string>)[name] ?? '';

const PERSON_ACTIONS: Record<string, ParticipantPatch> = {
  mute: { isMuted: true },
  unmute: { isMuted: false, serverMuted: false },
  startScreenSharing: { sharingScreen: true },
  stopScreenSharing: { sharingScreen: false },
  admit: { isInLobby: false },
};

/**
 * Control API: callkeeper acts as the other people in a call. They join and leave, mute
 * themselves, share their screen, press keys and fall silent; the bot hears of it as Graph
 * would tell it (roster updates, toneInfo, recordings ending).
 */
export function registerPeopleControlRoutes(app: FastifyInstance, deps: PeopleControlDeps): void {
  const { botActions } = deps;
  const base = '/_callkeeper/calls/:id';

  resource(app, `${base}/participants`, {
    GET: async (req: Req) => ({ value: (await botActions.roster(req.params.id)).map(toGraphParticipant) }),
    POST: async (req: Req, reply: FastifyReply) => reply.code(201).send(toGraphParticipant(await botActions.join(req.params.id, req.body))),
  });
  resource(app, `${base}/participants/:pid`, {
    DELETE: async (req: Req) => toGraphParticipant(await botActions.leave(req.params.id, param(req, 'pid'))),
  });
  for (const [action, patch] of Object.entries(PERSON_ACTIONS)) {
    resource(app, `${base}/participants/:pid/${action}`, {
      POST: async (req: Req) => toGraphParticipant(await botActions.updatePerson(req.params.id, param(req, 'pid'), patch)),
    });
  }
  resource(app, `${base}/tones`, {
    POST: async (req: Req) => botActions.sendTones(req.params.id, validateControlTones(req.body)),
  });
  resource(app, `${base}/silence`, {
    POST: async (req: Req) => botActions.silence(req.params.id),
  });
}
