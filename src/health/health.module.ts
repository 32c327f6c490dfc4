import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller.js';
import { HEALTH_ROLES, ReadinessIndicators } from './readiness-indicators.js';

@Module({})
export class HealthModule {
  /** `worker`: this process also runs the workers (serve), so buildkitd is its dependency too. */
  static forRoot(roles: { worker: boolean }): DynamicModule {
    return {
      module: HealthModule,
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController],
      providers: [{ provide: HEALTH_ROLES, useValue: roles }, ReadinessIndicators],
    };
  }
}
