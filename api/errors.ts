/**
 * Every HTTP failure is an AppError with a stable `code`, rendered by one middleware as
 * `{ error: { code, message, details } }`. Codes are part of the public API: never rename one.
 */
import { isGrpcServiceError, ServiceError } from '@temporalio/client';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../lib/logger';

export interface ErrorDetail {
  path?: string;
  message: string;
  [key: string]: unknown;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[] | Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details: ErrorDetail[]) {
    super(400, 'VALIDATION_FAILED', message, details);
  }
}

export class AuthenticationError extends AppError {
  constructor(
    code:
      | 'AUTH_REQUIRED'
      | 'INVALID_CREDENTIALS'
      | 'TOKEN_EXPIRED'
      | 'TOKEN_INVALID'
      | 'API_KEY_INVALID'
      | 'API_KEY_REVOKED'
      | 'USER_DISABLED',
    message: string,
  ) {
    super(401, code, message);
  }
}

export class ForbiddenError extends AppError {
  constructor(
    code: 'INSUFFICIENT_ROLE' | 'FORBIDDEN' | 'NOT_A_MEMBER' | 'USER_TOKEN_REQUIRED',
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(403, code, message, details);
  }
}

export class NotFoundError extends AppError {
  constructor(what: string, id?: string) {
    super(
      404,
      `${what.toUpperCase().replace(/[^A-Z]+/g, '_')}_NOT_FOUND`,
      id ? `${what} ${id} was not found` : `${what} was not found`,
    );
  }
}

export class ConflictError extends AppError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(409, code, message, details);
  }
}

export class TooManyRequestsError extends AppError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(429, code, message, details);
  }
}

/** The plan or the account's billing standing does not allow this (402). */
export class PaymentRequiredError extends AppError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(402, code, message, details);
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(code: string, message: string, cause?: unknown) {
    super(503, code, message, undefined, { cause });
  }
}

/** gRPC status UNAVAILABLE (14): the server could not be reached. */
const GRPC_UNAVAILABLE = 14;

/**
 * 503 TEMPORAL_UNAVAILABLE when `err` says Temporal cannot be reached (down or restarting) after the
 * client's own retries, as a gRPC error or the client's ServiceError around one; otherwise undefined.
 */
export function temporalUnavailable(err: unknown): ServiceUnavailableError | undefined {
  const grpcError = err instanceof ServiceError ? err.cause : err;
  if (!isGrpcServiceError(grpcError) || (grpcError.code as number) !== GRPC_UNAVAILABLE) return undefined;
  return new ServiceUnavailableError(
    'TEMPORAL_UNAVAILABLE',
    'The workflow service is unavailable for a moment; retry the request.',
    err,
  );
}

export const notFoundRoute: RequestHandler = (req, _res, next) => {
  next(new AppError(404, 'ROUTE_NOT_FOUND', `No route for ${req.method} ${req.path}`));
};

/** SQLSTATE classes of a lost or refused connection: 08 (connection exception), 57P0x (admin or crash shutdown, cannot connect now, database dropped, idle timeout). */
const CONNECTION_SQLSTATE = /^(08|57P0)/;
/**
 * What node-postgres and knex say (MikroORM puts the SQL in front) when the connection is gone or
 * none can be had. knex answers a transaction whose BEGIN failed on a lost connection with
 * "Transaction query already complete" at its first statement, the real error swallowed.
 */
const CONNECTION_LOST =
  /Connection terminated|Connection ended unexpectedly|Client has encountered a connection error|Client was closed and is not queryable|Timeout acquiring a connection|Transaction query already complete/;

/**
 * PostgreSQL could not be reached or dropped the connection mid-request (a failover, a restart,
 * a terminated backend): not the request's fault, and worth retrying. Looks through `cause`s,
 * since MikroORM wraps the driver's error.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_SQLSTATE.test(code)) return true;
    if (e.name === 'KnexTimeoutError' || CONNECTION_LOST.test(e.message)) return true;
  }
  return false;
}

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

/**
 * Maps body-parser failures, Temporal being unreachable and AppErrors to the error shape; anything
 * else is a 500 with no internals.
 */
export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    let appError: AppError;
    const parserError = err as BodyParserError;
    const unavailable = temporalUnavailable(err);
    if (err instanceof AppError) {
      appError = err;
    } else if (parserError?.type === 'entity.parse.failed') {
      appError = new AppError(
        400,
        'MALFORMED_JSON',
        `The request body is not valid JSON: ${parserError.message}`,
      );
    } else if (parserError?.type === 'entity.too.large') {
      appError = new AppError(
        413,
        'PAYLOAD_TOO_LARGE',
        `The request body exceeds the ${parserError.limit} byte limit`,
      );
    } else if (parserError?.type === 'encoding.unsupported' || parserError?.type === 'charset.unsupported') {
      appError = new AppError(415, 'UNSUPPORTED_ENCODING', parserError.message);
    } else if (isDatabaseUnavailable(err)) {
      appError = new ServiceUnavailableError(
        'DATABASE_UNAVAILABLE',
        'The database is unavailable for a moment; retry the request.',
        err,
      );
      res.set('retry-after', '1');
    } else if (unavailable) {
      appError = unavailable;
      res.set('retry-after', '1');
    } else {
      logger.error({ err, method: req.method, path: req.path }, 'unhandled error');
      appError = new AppError(500, 'INTERNAL_ERROR', 'Something went wrong on our side; it has been logged.');
    }
    if (appError.status >= 500 && appError.code !== 'INTERNAL_ERROR') {
      logger.warn({ code: appError.code, cause: appError.cause, path: req.path }, appError.message);
    }
    res.status(appError.status).json({
      error: {
        code: appError.code,
        message: appError.message,
        ...(appError.details ? { details: appError.details } : {}),
      },
    });
  };
}
