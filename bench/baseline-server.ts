// The baseline of bench/submit: a bare Fastify route that only does queue.add on the
// same Redis: what stevedore's POST /v1/jobs costs beyond the queue itself.
import Fastify from 'fastify';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';

const [redisUrl, port] = [process.env.REDIS_URL!, Number(process.env.PORT)];
const queue = new Queue('baseline-inspect', { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix: 'baseline' });
const app = Fastify();
app.post('/jobs', async (request, reply) => {
  const id = randomUUID();
  await queue.add('inspect', { jobId: id, request: request.body }, { jobId: id, removeOnComplete: true });
  return reply.status(202).send({ id, state: 'queued' });
});
await app.listen({ port, host: '127.0.0.1' });
console.log('ready');
