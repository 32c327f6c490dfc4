import { connect } from 'node:net';
import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { REDIS } from '../jobs/redis.module.js';
import { BuildkitClient } from '../engines/buildkit/buildkit-client.js';
import { ProcessError } from '../engines/process-runner.js';
import { isLoopbackRegistry } from '../oci/references.js';
import { DockerConfigCredentials } from '../engines/registry/docker-config.js';
import { RegistryClient } from '../engines/registry/registry-client.js';
import { eventLoop } from '../metrics/metrics.js';

const CHECK_TIMEOUT_MS = 2_000;

/** Which roles the process runs besides the api (HealthModule.forRoot). */
export const HEALTH_ROLES = Symbol('HEALTH_ROLES');

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms).unref()),
  ]);
}

/** One check per dependency /readyz names: redis, buildkit, registry. */
@Injectable()
export class ReadinessIndicators {
  private readonly buildkit?: BuildkitClient;
  private readonly buildkitHost?: string;
  private readonly registry?: RegistryClient;
  private readonly runsWorkers: boolean;
  private readonly loopLimits: AppConfig['eventLoopDegraded'];

  constructor(
    private readonly health: HealthIndicatorService,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) config: AppConfig,
    buildkit: BuildkitClient,
    @Inject(HEALTH_ROLES) roles: { worker: boolean },
  ) {
    this.runsWorkers = roles.worker;
    this.loopLimits = config.eventLoopDegraded;
    if (config.buildkitHost) this.buildkit = buildkit;
    this.buildkitHost = config.buildkitHost;
    // Plain HTTP when the mirror is loopback or listed in STEVEDORE_INSECURE_REGISTRIES
    // (a registry service on a compose network), as for every other registry call.
    // With the mirror's credentials when there are any (serve's embedded registry): after
    // the first 401 they are sent up front, so probes do not fill its log with refusals.
    if (config.registryMirror) {
      const credentials = DockerConfigCredentials.fromFile(config.registryAuthFile).lookup(config.registryMirror);
      this.registry = new RegistryClient(config.registryMirror, {
        insecure: isLoopbackRegistry(config.registryMirror) || config.insecureRegistries.includes(config.registryMirror),
        credentials,
      });
    }
  }

  async checkRedis() {
    const check = this.health.check('redis');
    try {
      if (this.redis.status === 'wait') await this.redis.connect().catch(() => undefined);
      await withTimeout(this.redis.ping(), CHECK_TIMEOUT_MS, 'redis');
      return check.up();
    } catch (err) {
      return check.down({ message: `redis unreachable: ${(err as Error).message}` });
    }
  }

  async checkBuildkit() {
    const check = this.health.check('buildkit');
    // An api process never talks to buildkitd (the workers build): without BUILDKIT_HOST
    // (compose and Kubernetes keep the api off the build network) there is nothing to check.
    if (!this.buildkit && !this.runsWorkers) return check.up({ probe: 'none', message: 'api only: builds run on the workers' });
    if (!this.buildkit) return check.down({ message: 'BUILDKIT_HOST is not set' });
    try {
      const workers = await this.buildkit.workers(CHECK_TIMEOUT_MS + 1_000).catch(async (err: unknown) => {
        // The api image carries no buildctl (only the worker image does): there, a
        // connection to buildkitd's address is the check.
        if (!(err instanceof ProcessError) || err.kind !== 'spawn') throw err;
        await withTimeout(connectProbe(this.buildkitHost!), CHECK_TIMEOUT_MS, 'buildkitd');
        return undefined;
      });
      if (workers === undefined) return check.up({ probe: 'connect' });
      if (workers.length === 0) return check.down({ message: 'buildkitd has no workers' });
      return check.up({ workers: workers.length });
    } catch (err) {
      return check.down({ message: `buildkitd unreachable: ${(err as Error).message}` });
    }
  }

  /**
   * Always up, with the delay p99 and max of the window and whether it stayed over the
   * threshold (`degraded`); the controller turns that into the answer's status.
   */
  checkEventLoop() {
    const loop = eventLoop.health(this.loopLimits.thresholdMs, this.loopLimits.windowMs);
    return this.health.check('event_loop').up({
      degraded: loop.degraded,
      p99_ms: Math.round(loop.p99Ms),
      max_ms: Math.round(loop.maxMs),
      threshold_ms: loop.thresholdMs,
      window_seconds: loop.windowMs / 1000,
    });
  }

  async checkRegistry() {
    const check = this.health.check('registry');
    if (!this.registry) return check.down({ message: 'STEVEDORE_REGISTRY_MIRROR is not set' });
    try {
      await this.registry.ping(CHECK_TIMEOUT_MS);
      return check.up();
    } catch (err) {
      return check.down({ message: (err as Error).message });
    }
  }
}

/** Opens and closes a connection to a tcp://host:port or unix:///path buildkitd address. */
function connectProbe(address: string): Promise<void> {
  const url = /^tcp:\/\/(.+):(\d+)$/.exec(address);
  const unix = /^unix:\/\/(\/.+)$/.exec(address);
  if (!url && !unix) return Promise.reject(new Error(`buildctl is not installed, and ${address} cannot be probed without it`));
  return new Promise((resolve, reject) => {
    const socket = url ? connect({ host: url[1]!.replace(/^\[|\]$/g, ''), port: Number(url[2]) }) : connect(unix![1]!);
    socket.unref();
    socket.setTimeout(CHECK_TIMEOUT_MS, () => socket.destroy(new Error(`no connection within ${CHECK_TIMEOUT_MS} ms`)));
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}
