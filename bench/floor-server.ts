// The floor of bench/submit: a bare Fastify route that does only the two Redis writes
// stevedore's submit cannot do without, with stevedore's own classes: the job record
// (JobStore.create, which also numbers the job for fair scheduling) and then the queue add
// with that priority (JobQueues.add). No auth, no validation, no Nest. What this reaches
// is the most any submit that writes its record before queueing can reach.
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { JobStore } from '../src/jobs/job-store.js';
import type { JobRecord, JobRequest } from '../src/jobs/job-types.js';
import { JobQueues } from '../src/jobs/queues.js';

const [redisUrl, port] = [process.env.REDIS_URL!, Number(process.env.PORT)];
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
const store = new JobStore(redis, 3600);
const queues = new JobQueues(redis);
const app = Fastify();
app.post('/jobs', async (request, reply) => {
  const id = randomUUID();
  const job: JobRecord = {
    id,
    tenant: 'default',
    action: 'inspect',
    state: 'queued',
    request: request.body as JobRequest,
    result: null,
    error: null,
    created_at: new Date().toISOString(),
    started_at: null,
    finished_at: null,
    attempts: 0,
    timeout_seconds: 60,
  };
  const priority = await store.create(job, { request_id: String(request.id) });
  await queues.add('inspect', id, priority);
  return reply.status(202).send({ id, state: 'queued' });
});
await app.listen({ port, host: '127.0.0.1' });
console.log('ready');
