import { Inject, Logger, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { ImageInspector } from '../engines/registry/image-inspector.js';
import { CancelBus } from '../jobs/cancel-bus.js';
import { JobStore } from '../jobs/job-store.js';
import { BULL_CONNECTION } from '../jobs/jobs.module.js';
import { DEFAULT_CONCURRENCY, type AvailableAction } from '../jobs/job.types.js';
import { QUEUE_PREFIX, queueName, type QueuePayload } from '../jobs/queues.js';
import { createJobRunner } from './job-runner.js';
import { InspectProcessor } from './inspect.processor.js';
import { BuildProcessor } from './build.processor.js';
import { ScanProcessor } from './scan.processor.js';
import { SignProcessor, VerifyProcessor } from './sign.processor.js';
import { PushProcessor } from './push.processor.js';
import { OptimizeProcessor } from './optimize.processor.js';
import { analyzeDockerfile } from '../engines/dockerfile/index.js';
import { analyzeImage } from '../engines/registry/image-analysis.js';
import { CosignClient } from '../engines/cosign/cosign-client.js';
import { SigningKeys } from '../engines/cosign/signing-keys.js';
import { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { TrivyClient } from '../engines/trivy/trivy-client.js';
import { ArtifactStore } from '../jobs/artifact-store.js';
import { REDIS } from '../jobs/redis.module.js';
import { BuildkitClient } from '../engines/buildkit/buildkit-client.js';
import { ContextStore } from '../engines/context/context-store.js';
import type { ActionProcessor } from './processor.js';

/**
 * One BullMQ worker per available action, each with its own concurrency. On
 * shutdown the workers close gracefully: running jobs finish, nothing new starts.
 */
@Module({})
export class WorkersModule implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Workers');
  private readonly workers: Worker<QueuePayload>[] = [];
  private readonly processors: ActionProcessor<AvailableAction>[];

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(BULL_CONNECTION) private readonly connection: Redis,
    private readonly store: JobStore,
    private readonly cancelBus: CancelBus,
    inspector: ImageInspector,
    buildkit: BuildkitClient,
    contexts: ContextStore,
    trivy: TrivyClient,
    artifacts: ArtifactStore,
    @Inject(REDIS) redis: Redis,
    cosign: CosignClient,
    keys: SigningKeys,
    registries: RegistryResolver,
  ) {
    const scan = new ScanProcessor({ trivy, inspector, artifacts, redis, cacheTtlSeconds: config.jobRetentionSeconds });
    const sign = new SignProcessor({ cosign, keys, inspector });
    const push = new PushProcessor(registries);
    const pipeline = { scan, sign, push, cosign, keys, trivy, artifacts };
    this.processors = [
      new InspectProcessor(inspector),
      new BuildProcessor({ buildkit, inspector, uploadDir: (digest) => contexts.path(digest), config, pipeline }),
      scan,
      sign,
      new VerifyProcessor({ cosign, keys, inspector }),
      push,
      new OptimizeProcessor({
        analyzeDockerfile,
        analyzeImage,
        inspector,
        registries,
        uploadDir: (digest) => contexts.path(digest),
        verify: config.buildkitHost && config.registryMirror ? { buildkit, inspector, scratchRegistry: config.registryMirror, smokeRuntime: config.smokeRuntime } : undefined,
      }),
    ];
  }

  async onApplicationBootstrap(): Promise<void> {
    for (const processor of this.processors) {
      const concurrency = this.config.concurrency[processor.action] ?? DEFAULT_CONCURRENCY[processor.action];
      const worker = new Worker<QueuePayload>(queueName(processor.action), createJobRunner(processor, this.store, this.logger), {
        connection: this.connection,
        prefix: QUEUE_PREFIX,
        concurrency,
      });
      worker.on('error', (err) => this.logger.warn(`worker ${processor.action}: ${err.message}`));
      this.workers.push(worker);
    }
    await this.cancelBus.subscribe((jobId) => {
      for (const worker of this.workers) worker.cancelJob(jobId, 'cancelled');
    });
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
    this.logger.log(`workers ready: ${this.processors.map((p) => p.action).join(', ')}`);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.cancelBus.close();
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
