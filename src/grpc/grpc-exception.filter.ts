import { Catch, Logger, type RpcExceptionFilter } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { status } from '@grpc/grpc-js';
import { throwError, type Observable } from 'rxjs';

/** gRPC status for known errors; INTERNAL with no detail (logged here) for the rest. */
@Catch()
export class GrpcExceptionFilter implements RpcExceptionFilter<unknown> {
  private readonly logger = new Logger('GrpcExceptionFilter');
  catch(exception: unknown): Observable<never> {
    if (exception instanceof RpcException) return throwError(() => exception.getError());
    this.logger.error(exception instanceof Error ? exception.stack : String(exception));
    return throwError(() => ({ code: status.INTERNAL, message: 'internal error; see the server log' }));
  }
}
