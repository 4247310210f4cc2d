/**
 * Authentication and authorization through the real api app (supertest), real PostgreSQL under
 * RLS and a real Temporal worker for sign-up's provisioning workflow.
 */
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { issueAccessToken } from '../api/auth/tokens';
import { withTenant } from '../db/tenant-context';
import {
  signUpTenant,
  startStack,
  uniqueEmail,
  type SignedUp,
  type TestStack,
  bearer,
} from './support/stack';

let stack: TestStack;
let owner: SignedUp;

beforeAll(async () => {
  stack = await startStack({ worker: true });
  owner = await signUpTenant(stack.app, 'Auth Co');
});
afterAll(() => stack.close());

async function addUser(role: string, password = 'a long enough password') {
  const email = uniqueEmail(role);
  const res = await request(stack.app)
    .post('/v1/users')
    .set(bearer(owner.token))
    .send({ email, name: `A ${role}`, role, password });
  expect(res.status).toBe(201);
  const login = await request(stack.app).post('/v1/auth/login').send({ email, password });
  expect(login.status).toBe(200);
  return { id: res.body.id as string, email, token: login.body.token as string };
}

describe('sign-up and sign-in', () => {
  it('sign-up returns a working token for an active tenant with its owner', async () => {
    const me = await request(stack.app).get('/v1/me').set(bearer(owner.token));
    expect(me.status).toBe(200);
    expect(me.body.user).toMatchObject({ id: owner.userId, email: owner.email, role: 'owner' });
    expect(me.body.tenant).toMatchObject({ id: owner.tenantId, name: 'Auth Co', status: 'active' });
    expect(me.body.user).not.toHaveProperty('passwordHash');
  });

  it('signs in with the right password and lists the memberships', async () => {
    const res = await request(stack.app)
      .post('/v1/auth/login')
      .send({ email: owner.email.toUpperCase(), password: owner.password });
    expect(res.status).toBe(200);
    expect(res.body.tenant.id).toBe(owner.tenantId);
    expect(res.body.memberships).toEqual([
      { tenantId: owner.tenantId, tenantName: 'Auth Co', role: 'owner' },
    ]);
  });

  it('switches workspace only among the memberships the password proved', async () => {
    const email = uniqueEmail('consultant');
    const password = 'the consultant password';
    const home = await signUpTenant(stack.app, 'Home Co');
    const away = await signUpTenant(stack.app, 'Away Co');
    const hostile = await signUpTenant(stack.app, 'Hostile Co');
    const invite = (tenant: SignedUp, role: string, pw: string) =>
      request(stack.app)
        .post('/v1/users')
        .set(bearer(tenant.token))
        .send({ email, name: 'Sam', role, password: pw });
    expect((await invite(home, 'admin', password)).status).toBe(201);
    const awayUser = await invite(away, 'viewer', password);
    expect(awayUser.status).toBe(201);
    // Someone else registers the same email in their own workspace with a password they know.
    expect((await invite(hostile, 'owner', 'the attacker password')).status).toBe(201);

    const login = await request(stack.app)
      .post('/v1/auth/login')
      .send({ email, password, tenantId: home.tenantId });
    expect(login.status).toBe(200);
    const workspaces = [
      { tenantId: home.tenantId, tenantName: 'Home Co', role: 'admin' },
      { tenantId: away.tenantId, tenantName: 'Away Co', role: 'viewer' },
    ];
    expect(login.body.memberships).toEqual(workspaces);
    const me = await request(stack.app).get('/v1/me').set(bearer(login.body.token));
    expect(me.body.memberships).toEqual(workspaces);

    const switched = await request(stack.app)
      .post('/v1/auth/switch-tenant')
      .set(bearer(login.body.token))
      .send({ tenantId: away.tenantId });
    expect(switched.status).toBe(200);
    expect(switched.body.tenant.id).toBe(away.tenantId);
    const meAway = await request(stack.app).get('/v1/me').set(bearer(switched.body.token));
    expect(meAway.body).toMatchObject({ tenant: { id: away.tenantId }, actor: { role: 'viewer' } });
    expect(meAway.body.memberships).toEqual(workspaces);

    // Not a workspace the password proved: refused, both ways.
    const intoHostile = await request(stack.app)
      .post('/v1/auth/switch-tenant')
      .set(bearer(login.body.token))
      .send({ tenantId: hostile.tenantId });
    expect(intoHostile.status).toBe(403);
    expect(intoHostile.body.error.code).toBe('NOT_A_MEMBER');
    const attacker = await request(stack.app)
      .post('/v1/auth/login')
      .send({ email, password: 'the attacker password' });
    expect(attacker.body.tenant.id).toBe(hostile.tenantId);
    const intoHome = await request(stack.app)
      .post('/v1/auth/switch-tenant')
      .set(bearer(attacker.body.token))
      .send({ tenantId: home.tenantId });
    expect(intoHome.status).toBe(403);
    expect(intoHome.body.error.code).toBe('NOT_A_MEMBER');

    // A membership disabled since sign-in is gone at once.
    const disable = await request(stack.app)
      .patch(`/v1/users/${awayUser.body.id as string}`)
      .set(bearer(away.token))
      .send({ disabled: true });
    expect(disable.status).toBe(200);
    const afterDisable = await request(stack.app)
      .post('/v1/auth/switch-tenant')
      .set(bearer(login.body.token))
      .send({ tenantId: away.tenantId });
    expect(afterDisable.status).toBe(403);
    const meAfter = await request(stack.app).get('/v1/me').set(bearer(login.body.token));
    expect(meAfter.body.memberships).toEqual([workspaces[0]]);
  });

  it('wrong password and unknown email are the same 401 INVALID_CREDENTIALS', async () => {
    const wrong = await request(stack.app)
      .post('/v1/auth/login')
      .send({ email: owner.email, password: 'not the password' });
    const unknown = await request(stack.app)
      .post('/v1/auth/login')
      .send({ email: uniqueEmail('nobody'), password: 'whatever1234' });
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('INVALID_CREDENTIALS');
    }
  });
});

describe('credentials on protected routes', () => {
  it('no credentials: 401 AUTH_REQUIRED', async () => {
    const res = await request(stack.app).get('/v1/me');
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('AUTH_REQUIRED');
  });

  it('an expired token: 401 TOKEN_EXPIRED', async () => {
    const expired = jwt.sign({ tid: owner.tenantId }, stack.config.JWT_SECRET, {
      subject: owner.userId,
      issuer: 'parley',
      audience: 'parley-api',
      expiresIn: -10,
    });
    const res = await request(stack.app).get('/v1/me').set(bearer(expired));
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('TOKEN_EXPIRED');
  });

  it('a tampered token (claims changed, or signed with another secret): 401 TOKEN_INVALID', async () => {
    const [header, payload, signature] = owner.token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const forgedPayload = Buffer.from(
      JSON.stringify({ ...claims, tid: '00000000-0000-4000-8000-000000000000' }),
    ).toString('base64url');
    const otherSecret = issueAccessToken('x'.repeat(40), 600, {
      sub: owner.userId,
      tid: owner.tenantId,
    }).token;
    for (const token of [`${header}.${forgedPayload}.${signature}`, otherSecret, 'not-a-jwt']) {
      const res = await request(stack.app).get('/v1/me').set(bearer(token));
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('TOKEN_INVALID');
    }
  });

  it('a disabled user is refused at once, even with an unexpired token: 401 USER_DISABLED', async () => {
    const member = await addUser('designer');
    expect((await request(stack.app).get('/v1/me').set(bearer(member.token))).status).toBe(200);
    const disable = await request(stack.app)
      .patch(`/v1/users/${member.id}`)
      .set(bearer(owner.token))
      .send({ disabled: true });
    expect(disable.status).toBe(200);
    const res = await request(stack.app).get('/v1/me').set(bearer(member.token));
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('USER_DISABLED');
    const login = await request(stack.app)
      .post('/v1/auth/login')
      .send({ email: member.email, password: 'a long enough password' });
    expect(login.status).toBe(401);
  });
});

describe('roles', () => {
  it('a viewer calling an admin route gets 403 INSUFFICIENT_ROLE and nothing changes', async () => {
    const viewer = await addUser('viewer');
    const before = await request(stack.app).get('/v1/users').set(bearer(owner.token));
    const res = await request(stack.app)
      .post('/v1/users')
      .set(bearer(viewer.token))
      .send({ email: uniqueEmail('x'), name: 'X', role: 'admin', password: 'a long enough password' });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'INSUFFICIENT_ROLE', details: { actual: 'viewer' } });
    const after = await request(stack.app).get('/v1/users').set(bearer(owner.token));
    expect(after.body.data).toHaveLength(before.body.data.length);
    // Reading the team is allowed to every role.
    expect((await request(stack.app).get('/v1/users').set(bearer(viewer.token))).status).toBe(200);
    expect((await request(stack.app).get('/v1/api-keys').set(bearer(viewer.token))).status).toBe(403);
  });

  it('an admin cannot grant or change the owner role', async () => {
    const admin = await addUser('admin');
    const grant = await request(stack.app)
      .post('/v1/users')
      .set(bearer(admin.token))
      .send({ email: uniqueEmail('o'), name: 'O', role: 'owner', password: 'a long enough password' });
    expect(grant.status).toBe(403);
    const demote = await request(stack.app)
      .patch(`/v1/users/${owner.userId}`)
      .set(bearer(admin.token))
      .send({ role: 'viewer' });
    expect(demote.status).toBe(403);
    expect(demote.body.error.code).toBe('INSUFFICIENT_ROLE');
  });

  it('the last owner cannot be demoted, disabled or removed: 409 LAST_OWNER', async () => {
    for (const change of [{ role: 'admin' }, { disabled: true }]) {
      const res = await request(stack.app)
        .patch(`/v1/users/${owner.userId}`)
        .set(bearer(owner.token))
        .send(change);
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('LAST_OWNER');
    }
    const del = await request(stack.app).delete(`/v1/users/${owner.userId}`).set(bearer(owner.token));
    expect(del.status).toBe(409);
  });
});

describe('users CRUD', () => {
  it('creates, reads, updates and deletes a user, refusing a duplicate email', async () => {
    const email = uniqueEmail('crud');
    const created = await request(stack.app)
      .post('/v1/users')
      .set(bearer(owner.token))
      .send({ email, name: 'Cam', role: 'campaign_manager', password: 'a long enough password' });
    expect(created.status).toBe(201);
    const dup = await request(stack.app).post('/v1/users').set(bearer(owner.token)).send({
      email: email.toUpperCase(),
      name: 'Cam 2',
      role: 'viewer',
      password: 'a long enough password',
    });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('EMAIL_TAKEN');

    const got = await request(stack.app).get(`/v1/users/${created.body.id}`).set(bearer(owner.token));
    expect(got.body).toMatchObject({ email, role: 'campaign_manager' });
    const patched = await request(stack.app)
      .patch(`/v1/users/${created.body.id}`)
      .set(bearer(owner.token))
      .send({ role: 'designer', name: 'Cam D' });
    expect(patched.body).toMatchObject({ role: 'designer', name: 'Cam D' });
    expect(
      (await request(stack.app).delete(`/v1/users/${created.body.id}`).set(bearer(owner.token))).status,
    ).toBe(204);
    const gone = await request(stack.app).get(`/v1/users/${created.body.id}`).set(bearer(owner.token));
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('USER_NOT_FOUND');
  });

  it("another tenant's user id is not found, not changed", async () => {
    const other = await signUpTenant(stack.app, 'Other Co');
    for (const res of [
      await request(stack.app).get(`/v1/users/${other.userId}`).set(bearer(owner.token)),
      await request(stack.app)
        .patch(`/v1/users/${other.userId}`)
        .set(bearer(owner.token))
        .send({ name: 'Hijacked' }),
      await request(stack.app).delete(`/v1/users/${other.userId}`).set(bearer(owner.token)),
    ]) {
      expect(res.status).toBe(404);
    }
    const me = await request(stack.app).get('/v1/me').set(bearer(other.token));
    expect(me.body.user.name).toBe('Owner');
  });
});

describe('API keys', () => {
  it('authenticates with a new key, stores only a hash, and stops at once when revoked', async () => {
    const created = await request(stack.app)
      .post('/v1/api-keys')
      .set(bearer(owner.token))
      .send({ name: 'CI', role: 'designer' });
    expect(created.status).toBe(201);
    const key: string = created.body.key;
    expect(key).toMatch(/^prk_[0-9a-f]{32}_/);

    const me = await request(stack.app).get('/v1/me').set(bearer(key));
    expect(me.status).toBe(200);
    expect(me.body.actor).toMatchObject({ type: 'api_key', id: created.body.id, role: 'designer' });
    expect((await request(stack.app).get('/v1/me').set('x-api-key', key)).status).toBe(200);

    const listed = await request(stack.app).get('/v1/api-keys').set(bearer(owner.token));
    const listedKey = listed.body.data.find((k: { id: string }) => k.id === created.body.id);
    expect(listedKey).toBeDefined();
    expect(JSON.stringify(listed.body)).not.toContain(key.slice(-20));

    // A designer key cannot manage users.
    expect((await request(stack.app).get('/v1/api-keys').set(bearer(key))).status).toBe(403);

    const revoked = await request(stack.app)
      .delete(`/v1/api-keys/${created.body.id}`)
      .set(bearer(owner.token));
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    const after = await request(stack.app).get('/v1/me').set(bearer(key));
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('API_KEY_REVOKED');
  });

  it('an unknown or malformed key: 401 API_KEY_INVALID', async () => {
    const fakeForTenant = `prk_${owner.tenantId.replace(/-/g, '')}_${'A'.repeat(43)}`;
    for (const key of [fakeForTenant, 'prk_garbage']) {
      const res = await request(stack.app).get('/v1/me').set(bearer(key));
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('API_KEY_INVALID');
    }
  });
});

describe('request validation', () => {
  it('malformed JSON: 400 MALFORMED_JSON', async () => {
    const res = await request(stack.app)
      .post('/v1/users')
      .set(bearer(owner.token))
      .set('content-type', 'application/json')
      .send('{"email": "x"');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('MALFORMED_JSON');
  });

  it('a schema-invalid body: 400 VALIDATION_FAILED naming each field', async () => {
    const res = await request(stack.app)
      .post('/v1/users')
      .set(bearer(owner.token))
      .send({ email: 'not-an-email', role: 'boss', password: 'short' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    const paths = res.body.error.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['body.email', 'body.name', 'body.role', 'body.password']));
    expect(res.body.error.details.find((d: { path: string }) => d.path === 'body.name').message).toBe(
      'is required',
    );
    expect(res.body.error.message).toContain('body.email');
  });

  it('a bad path id: 400 naming params.id', async () => {
    const res = await request(stack.app).get('/v1/users/not-a-uuid').set(bearer(owner.token));
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('params.id');
  });

  it('an oversized body: 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await request(stack.app)
      .post('/v1/auth/login')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ email: 'a@b.co', password: 'x'.repeat(2 * 1024 * 1024) }));
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('an unknown route: 404 ROUTE_NOT_FOUND in the same error shape', async () => {
    const res = await request(stack.app).get('/v1/nope');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: { code: 'ROUTE_NOT_FOUND', message: 'No route for GET /v1/nope' } });
  });
});

describe('audit log', () => {
  it('records admin actions with actor, before and after', async () => {
    const member = await addUser('viewer');
    await request(stack.app)
      .patch(`/v1/users/${member.id}`)
      .set(bearer(owner.token))
      .send({ role: 'designer' });
    const rows = await withTenant(stack.orm, owner.tenantId, (em) =>
      em.execute<
        {
          action: string;
          actor_id: string;
          before: { role: string } | null;
          after: { role: string } | null;
        }[]
      >('select action, actor_id, before, after from audit_log where target_id = ? order by created_at', [
        member.id,
      ]),
    );
    expect(rows.map((r) => r.action)).toEqual(['user.created', 'user.updated']);
    expect(rows[1]).toMatchObject({
      actor_id: owner.userId,
      before: { role: 'viewer' },
      after: { role: 'designer' },
    });
  });
});
