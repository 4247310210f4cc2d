/** Health probes against the real dependencies, the OpenAPI document and the /docs page. */
import { Client, Connection } from '@temporalio/client';
import request from 'supertest';
import { createApp } from '../api/app';
import { createLogger } from '../lib/logger';
import { startStack, type TestStack } from './support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.close());

describe('health', () => {
  it('/health/ready is ok when PostgreSQL and Temporal both answer', async () => {
    const res = await request(stack.app).get('/health/ready');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'ok',
      checks: { postgres: { status: 'ok' }, temporal: { status: 'ok' } },
    });
  });

  it('/health/ready is 503 naming Temporal when it is unreachable, while /health/live stays 200', async () => {
    const connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS as string });
    await connection.close();
    const app = createApp({
      ...stack,
      temporal: new Client({ connection }),
      logger: createLogger(stack.config, 'test'),
    });
    const ready = await request(app).get('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.status).toBe('unavailable');
    expect(ready.body.checks.postgres.status).toBe('ok');
    expect(ready.body.checks.temporal.status).toBe('error');
    expect((await request(app).get('/health/live')).status).toBe(200);
  });
});

describe('API documentation', () => {
  it('serves an OpenAPI 3.1 document describing every route with its request schema', async () => {
    const res = await request(stack.app).get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    const paths = res.body.paths;
    expect(Object.keys(paths)).toEqual(
      expect.arrayContaining([
        '/v1/auth/signup',
        '/v1/auth/login',
        '/v1/me',
        '/v1/users',
        '/v1/users/{id}',
        '/v1/api-keys',
        '/v1/api-keys/{id}',
      ]),
    );
    const createUser = paths['/v1/users'].post;
    const schema = createUser.requestBody.content['application/json'].schema;
    expect(schema.required).toEqual(expect.arrayContaining(['email', 'name', 'role', 'password']));
    expect(schema.properties.role.enum).toEqual(['owner', 'admin', 'designer', 'campaign_manager', 'viewer']);
    expect(createUser.description).toBe('Roles: owner, admin');
    expect(paths['/v1/users/{id}'].get.parameters).toEqual([
      expect.objectContaining({ name: 'id', in: 'path', required: true }),
    ]);
    expect(paths['/v1/auth/login'].post.security).toEqual([]);
  });

  it('serves the interactive docs page at /docs', async () => {
    const res = await request(stack.app).get('/docs/').redirects(1);
    expect(res.status).toBe(200);
    expect(res.text).toContain('swagger-ui');
  });

  it('serves the dashboard page at /', async () => {
    const res = await request(stack.app).get('/');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<title>Parley</title>');
  });

  it("serves the dashboard's page for its own routes, but never for an API path", async () => {
    const page = await request(stack.app)
      .get('/agents/3f0c8d1e-0000-4000-8000-000000000000')
      .set('accept', 'text/html');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.text).toContain('<title>Parley</title>');
    const api = await request(stack.app).get('/v1/no-such-thing').set('accept', 'text/html');
    expect(api.status).toBe(404);
    expect(api.body.error.code).toBe('ROUTE_NOT_FOUND');
    const json = await request(stack.app).get('/agents').set('accept', 'application/json');
    expect(json.status).toBe(404);
    expect(json.body.error.code).toBe('ROUTE_NOT_FOUND');
    const post = await request(stack.app).post('/agents').set('accept', 'text/html');
    expect(post.status).toBe(404);
  });
});
