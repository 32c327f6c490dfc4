import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.js';

/**
 * Prometheus scrape endpoint, open like /healthz (no tenant data in any label). Kept
 * out of the OpenAPI document: it is for Prometheus, not for API clients.
 */
@ApiExcludeController()
@Controller()
export class MetricsController {
  @Get('metrics')
  @Header('content-type', METRICS_CONTENT_TYPE)
  @Header('cache-control', 'no-store')
  metrics(): Promise<string> {
    return renderMetrics();
  }
}
