import type { FastifyInstance } from 'fastify';
import { graphErrors } from '../errors/graph-errors.js';
import { type Req, resource } from '../http/resource.js';
import { iso } from '../http/wire.js';
import type { RequestJournal } from './request-journal.js';

const bad = (detail: string) => graphErrors.invalidControlRequest({ detail });

/** GET /_callkeeper/requests?callId=&appId=&$top=: the journal, newest first. */
export function registerJournalRoutes(app: FastifyInstance, journal: RequestJournal): void {
  resource(app, '/_callkeeper/requests', {
    GET: async (req: Req) => {
      const q = req.query;
      const top = q.$top === undefined ? journal.size : Number(q.$top);
      if (!Number.isInteger(top) || top < 1 || top > journal.size) throw bad(`'$top' must be a whole number from 1 to ${journal.size}.`);
      for (const k of ['callId', 'appId'] as const) {
        const v = q[k];
        if (v !== undefined && (v.length === 0 || v.length > 200)) throw bad(`'${k}' must be 1 to 200 characters.`);
      }
      const entries = await journal.list({
        limit: top,
        ...(q.callId !== undefined ? { callId: q.callId } : {}),
        ...(q.appId !== undefined ? { appId: q.appId } : {}),
      });
      return { value: entries.map((e) => ({ ...e, at: iso(e.at) })) };
    },
  });
}
