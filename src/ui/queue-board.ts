import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter as BullBoardAdapter } from '@bull-board/fastify';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { JobQueues } from '../jobs/queues.js';
import { DashboardAuth, refuse } from './dashboard-auth.js';

export const QUEUE_BOARD_PATH = '/admin/queues';

/**
 * bull-board's page is React from its own static files plus inline style attributes.
 * The policy keeps everything on this origin: it blocks the Google Fonts stylesheet its
 * page links (the operator's browser never calls out; the system font is used) and any
 * framing of the board.
 */
const BOARD_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
    "font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};

/**
 * bull-board over the action queues at /admin/queues, for the operator only. Read-only:
 * retrying or removing a BullMQ entry behind the job store's back would leave a job
 * record that no longer matches its queue entry; jobs are cancelled through /v1.
 * The auth hook sits in a plugin scope wrapping bull-board's, so it runs for every
 * route bull-board adds (page, API and static files) and for nothing else.
 */
export async function mountQueueBoard(app: NestFastifyApplication): Promise<void> {
  const queues = app.get(JobQueues);
  const auth = app.get(DashboardAuth);
  const board = new BullBoardAdapter();
  board.setBasePath(QUEUE_BOARD_PATH);
  createBullBoard({
    queues: queues.all().map((queue) => new BullMQAdapter(queue, { readOnlyMode: true })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'stevedore' } },
  });
  await app.register(async (scope: FastifyInstance) => {
    scope.addHook('onRequest', async (request, reply) => {
      const access = await auth.check(request);
      if (!access.ok) return refuse(request, reply, access);
    });
    scope.addHook('onSend', async (_request, reply) => {
      void reply.headers(BOARD_HEADERS);
    });
    await scope.register(board.registerPlugin(), { prefix: QUEUE_BOARD_PATH });
  });
}
