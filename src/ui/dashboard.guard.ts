import { Catch, Injectable, type ArgumentsHost, type CanActivate, type ExceptionFilter, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DashboardAuth, refuse, type DashboardAccess } from './dashboard-auth.js';

/** Thrown by DashboardGuard; DashboardRefusalFilter turns it into a login redirect or an error. */
export class DashboardRefused extends Error {
  constructor(readonly access: Extract<DashboardAccess, { ok: false }>) {
    super(access.message);
  }
}

/** The operator only (admin bearer token, or a session cookie on GET/HEAD): see DashboardAuth. */
@Injectable()
export class DashboardGuard implements CanActivate {
  constructor(private readonly auth: DashboardAuth) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const access = await this.auth.check(context.switchToHttp().getRequest<FastifyRequest>());
    if (!access.ok) throw new DashboardRefused(access);
    return true;
  }
}

/** Controller-scoped, so it runs before the global JSON error filter for this one exception. */
@Catch(DashboardRefused)
export class DashboardRefusalFilter implements ExceptionFilter {
  catch(exception: DashboardRefused, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    void refuse(http.getRequest<FastifyRequest>(), http.getResponse<FastifyReply>(), exception.access);
  }
}
