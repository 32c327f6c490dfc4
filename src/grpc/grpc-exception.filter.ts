import { Catch, Logger, type RpcExceptionFilter } from '@nestjs/common';
import { status } from '@grpc/grpc-js';
import { throwError, type Observable } from 'rxjs';
import { toGrpcError } from './grpc-errors.js';

/** gRPC status for known errors; INTERNAL with no detail (logged here) for the rest. */
@Catch()
export class GrpcExceptionFilter implements RpcExceptionFilter<unknown> {
  private readonly logger = new Logger('GrpcExceptionFilter');
  catch(exception: unknown): Observable<never> {
    const known = toGrpcError(exception);
    if (known) return throwError(() => known);
    this.logger.error(exception instanceof Error ? exception.stack : JSON.stringify(exception));
    return throwError(() => ({ code: status.INTERNAL, message: 'internal error; see the server log' }));
  }
}
