/**
 * Declares a route once: its access rule, zod schemas for params, query and body, and its handler.
 * The same declaration validates requests, enforces roles and produces the OpenAPI document.
 */
import express, { type Express, type Request, type Response } from 'express';
import { type z, type ZodType } from 'zod';
import type { Role } from '../db/entities';
import { ForbiddenError, ValidationError, type ErrorDetail } from './errors';

export interface Actor {
  type: 'user' | 'api_key';
  id: string;
  role: Role;
  email?: string;
}

export interface AuthContext {
  tenantId: string;
  actor: Actor;
  /** A user's token: the tenants it may switch to (proven by password at sign-in). */
  memberTenantIds?: string[];
}

/** 'public': no credentials; 'authenticated': any role; or the roles allowed. */
export type AccessRule = 'public' | 'authenticated' | readonly Role[];

export interface HandlerResult {
  status?: number;
  body?: unknown;
}

type Infer<S> = S extends ZodType ? z.output<S> : Record<string, never>;

export interface HandlerInput<P, Q, B, A extends AccessRule> {
  params: Infer<P>;
  query: Infer<Q>;
  body: Infer<B>;
  auth: A extends 'public' ? undefined : AuthContext;
  req: Request;
  res: Response;
}

export interface ResponseDoc {
  description: string;
  schema?: ZodType;
}

export interface RouteSpec<
  P extends ZodType | undefined,
  Q extends ZodType | undefined,
  B extends ZodType | undefined,
  A extends AccessRule,
> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  summary: string;
  tag: string;
  access: A;
  params?: P;
  query?: Q;
  body?: B;
  responses: Record<number, ResponseDoc>;
  handler: (input: HandlerInput<P, Q, B, A>) => Promise<HandlerResult>;
}

export interface Operation {
  method: string;
  path: string;
  summary: string;
  tag: string;
  access: AccessRule;
  params?: ZodType;
  query?: ZodType;
  body?: ZodType;
  responses: Record<number, ResponseDoc>;
}

export type Authenticate = (req: Request) => Promise<AuthContext>;

/** Runs after a request's credentials are verified, before its role check (e.g. a per-tenant rate limit). */
export type AuthenticatedHook = (auth: AuthContext, req: Request, res: Response) => Promise<void>;

const AUTHENTICATED_HOOKS = 'parley.authenticatedHooks';

/** Registers a hook every authenticated route of `app` runs once its caller is known; it may throw an AppError. */
export function onAuthenticated(app: Express, hook: AuthenticatedHook): void {
  const hooks = (app.locals[AUTHENTICATED_HOOKS] ??= []) as AuthenticatedHook[];
  hooks.push(hook);
}

async function runAuthenticatedHooks(auth: AuthContext, req: Request, res: Response): Promise<void> {
  const hooks = req.app?.locals?.[AUTHENTICATED_HOOKS] as AuthenticatedHook[] | undefined;
  for (const hook of hooks ?? []) await hook(auth, req, res);
}

function issuesToDetails(where: 'params' | 'query' | 'body', error: z.ZodError): ErrorDetail[] {
  return error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join('.'),
    message:
      issue.code === 'invalid_type' && /received undefined$/.test(issue.message)
        ? 'is required'
        : issue.message,
    code: issue.code,
  }));
}

function parsePart<S extends ZodType | undefined>(
  where: 'params' | 'query' | 'body',
  schema: S,
  value: unknown,
): Infer<S> {
  if (!schema) return {} as Infer<S>;
  const input = where === 'body' && value === undefined ? {} : value;
  const result = schema.safeParse(input);
  if (!result.success) {
    const details = issuesToDetails(where, result.error);
    const summary = details.map((d) => `${d.path}: ${d.message}`).join('; ');
    throw new ValidationError(`Invalid request: ${summary}`, details);
  }
  return result.data as Infer<S>;
}

export function hasAccess(rule: AccessRule, role: Role): boolean {
  if (rule === 'public' || rule === 'authenticated') return true;
  return rule.includes(role);
}

export class ApiRouter {
  readonly router = express.Router();
  readonly operations: Operation[] = [];

  constructor(private readonly authenticate: Authenticate) {}

  route<
    P extends ZodType | undefined,
    Q extends ZodType | undefined,
    B extends ZodType | undefined,
    A extends AccessRule,
  >(spec: RouteSpec<P, Q, B, A>): void {
    this.operations.push({
      method: spec.method,
      path: spec.path,
      summary: spec.summary,
      tag: spec.tag,
      access: spec.access,
      params: spec.params,
      query: spec.query,
      body: spec.body,
      responses: spec.responses,
    });
    this.router[spec.method](spec.path, async (req: Request, res: Response) => {
      let auth: AuthContext | undefined;
      if (spec.access !== 'public') {
        auth = await this.authenticate(req);
        await runAuthenticatedHooks(auth, req, res);
        if (!hasAccess(spec.access, auth.actor.role)) {
          throw new ForbiddenError(
            'INSUFFICIENT_ROLE',
            `This action needs one of the roles: ${(spec.access as readonly Role[]).join(', ')}`,
            {
              required: spec.access,
              actual: auth.actor.role,
            },
          );
        }
      }
      const params = parsePart('params', spec.params, req.params);
      const query = parsePart('query', spec.query, req.query);
      const body = parsePart('body', spec.body, req.body);
      const result = await spec.handler({ params, query, body, auth, req, res } as HandlerInput<P, Q, B, A>);
      if (res.headersSent) return;
      if (result.body === undefined) res.status(result.status ?? 204).end();
      else res.status(result.status ?? 200).json(result.body);
    });
  }
}
