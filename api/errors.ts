/**
 * Every HTTP failure is an AppError with a stable `code`, rendered by one middleware as
 * `{ error: { code, message, details } }`. Codes are part of the public API: never rename one.
 */
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

export const notFoundRoute: RequestHandler = (req, _res, next) => {
  next(new AppError(404, 'ROUTE_NOT_FOUND', `No route for ${req.method} ${req.path}`));
};

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

/** Maps body-parser failures and AppErrors to the error shape; anything else is a 500 with no internals. */
export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    let appError: AppError;
    const parserError = err as BodyParserError;
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
