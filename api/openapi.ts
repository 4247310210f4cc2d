/** Builds the OpenAPI 3.1 document from the routes' own zod schemas, so docs cannot drift from validation. */
import { z, type ZodType } from 'zod';
import type { Operation } from './routing';

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'Stable, machine-readable error code' },
        message: { type: 'string' },
        details: {},
      },
    },
  },
};

function jsonSchema(schema: ZodType, io: 'input' | 'output') {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
}

function parametersOf(where: 'path' | 'query', schema: ZodType | undefined) {
  if (!schema) return [];
  const json = jsonSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, propertySchema]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    schema: propertySchema,
  }));
}

export function buildOpenApiDocument(operations: Operation[], info: { version: string; serverUrl: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const path = op.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const responses: Record<string, unknown> = {};
    for (const [status, doc] of Object.entries(op.responses)) {
      responses[status] = doc.schema
        ? {
            description: doc.description,
            content: { 'application/json': { schema: jsonSchema(doc.schema, 'output') } },
          }
        : { description: doc.description };
    }
    responses.default = {
      description: 'Error',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
    paths[path] ??= {};
    paths[path][op.method] = {
      summary: op.summary,
      tags: [op.tag],
      ...(op.access === 'public' ? { security: [] } : {}),
      ...(Array.isArray(op.access) ? { description: `Roles: ${op.access.join(', ')}` } : {}),
      parameters: [...parametersOf('path', op.params), ...parametersOf('query', op.query)],
      ...(op.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: jsonSchema(op.body, 'input') } },
            },
          }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Parley API',
      version: info.version,
      description:
        'REST API for Parley, used by the dashboard and by API clients. Authenticate with `Authorization: Bearer <JWT from /v1/auth/login>` or `Authorization: Bearer prk_…` (API key). Errors are `{ error: { code, message, details } }`.',
    },
    servers: [{ url: info.serverUrl }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'JWT access token or API key' },
      },
      schemas: { Error: ERROR_SCHEMA },
    },
    paths,
  };
}
