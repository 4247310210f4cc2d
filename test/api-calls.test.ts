/**
 * The calls list: filters, stable cursor pagination, tenant isolation; the detail's 404; and a
 * call's recording, served from RECORDINGS_DIR and from nowhere else.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { encodeWav } from '../realtime-relay/audio/wav';
import { ownerClient, signUpTenant, startStack, type SignedUp, type TestStack } from './support/stack';

let stack: TestStack;
let tenant: SignedUp;
let other: SignedUp;
const agentA = randomUUID();
const agentB = randomUUID();
const ids: string[] = [];
/** The recordings folder the api serves from, and a folder beside it that it must never serve. */
const scratch = mkdtempSync(path.join(os.tmpdir(), 'parley-api-calls-'));
const recordingsDir = path.join(scratch, 'recordings');
const outside = path.join(scratch, 'outside');

beforeAll(async () => {
  mkdirSync(recordingsDir);
  mkdirSync(outside);
  stack = await startStack({ worker: true, env: { RECORDINGS_DIR: recordingsDir } });
  tenant = await signUpTenant(stack.app, 'Calls Co');
  other = await signUpTenant(stack.app, 'Other Calls Co');
  const owner = await ownerClient(stack.config);
  try {
    for (const [id, name] of [
      [agentA, 'A'],
      [agentB, 'B'],
    ]) {
      await owner.query('insert into agents (id, tenant_id, name) values ($1, $2, $3)', [
        id,
        tenant.tenantId,
        name,
      ]);
    }
    // Seven calls a minute apart, newest last; two share a timestamp to exercise the id tie-break.
    const base = Date.parse('2026-11-01T10:00:00Z');
    for (let i = 0; i < 7; i++) {
      const id = randomUUID();
      ids.push(id);
      const createdAt = new Date(base + Math.min(i, 5) * 60_000).toISOString();
      await owner.query(
        `insert into calls (id, tenant_id, agent_id, direction, channel, workflow_id, status, disposition, created_at)
         values ($1, $2, $3, $4, 'text', $5, 'completed', $6, $7)`,
        [
          id,
          tenant.tenantId,
          i % 2 ? agentB : agentA,
          i < 4 ? 'inbound' : 'outbound',
          `call:${id}`,
          i % 3 ? 'booked' : 'no_answer',
          createdAt,
        ],
      );
    }
    await owner.query(
      `insert into calls (id, tenant_id, direction, channel, workflow_id, status) values ($1, $2, 'inbound', 'text', $3, 'completed')`,
      [randomUUID(), other.tenantId, `call:other-${randomUUID()}`],
    );
  } finally {
    await owner.end();
  }
});
afterAll(async () => {
  await stack.close();
  rmSync(scratch, { recursive: true, force: true });
});

const auth = () => ({ authorization: `Bearer ${tenant.token}` });

async function allPages(query: Record<string, string | number>): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 20; page++) {
    const res: request.Response = await request(stack.app)
      .get('/v1/calls')
      .query({ ...query, ...(cursor ? { cursor } : {}) })
      .set(auth());
    expect(res.status).toBe(200);
    seen.push(...res.body.data.map((c: { id: string }) => c.id));
    cursor = res.body.nextCursor;
    if (!cursor) return seen;
  }
  throw new Error('pagination did not end');
}

it('pages through every call newest first, each exactly once, with a stable order on equal timestamps', async () => {
  const seen = await allPages({ limit: 2 });
  expect(seen).toHaveLength(7);
  expect(new Set(seen).size).toBe(7);
  const newestFirst = [...ids].reverse();
  // The two calls created at the same instant come in id order (descending); the rest by time.
  expect(seen.slice(2)).toEqual(newestFirst.slice(2));
  expect(seen.slice(0, 2).sort()).toEqual(newestFirst.slice(0, 2).sort());
});

it('filters by agent, direction, disposition and date range', async () => {
  expect((await allPages({ agentId: agentB })).sort()).toEqual(ids.filter((_, i) => i % 2).sort());
  expect((await allPages({ direction: 'outbound' })).sort()).toEqual(ids.slice(4).sort());
  expect((await allPages({ disposition: 'no_answer' })).sort()).toEqual(
    ids.filter((_, i) => i % 3 === 0).sort(),
  );
  const window = await allPages({ from: '2026-11-01T10:01:00Z', to: '2026-11-01T10:03:00Z' });
  expect(window.sort()).toEqual([ids[1], ids[2]].sort());
});

it('refuses a forged cursor and bad filters with 400 naming the parameter', async () => {
  const bad = await request(stack.app).get('/v1/calls').query({ cursor: 'not-a-cursor' }).set(auth());
  expect(bad.status).toBe(400);
  expect(bad.body.error.details[0].path).toBe('query.cursor');
  const badDate = await request(stack.app).get('/v1/calls').query({ from: 'yesterday' }).set(auth());
  expect(badDate.status).toBe(400);
  expect(badDate.body.error.details[0].path).toBe('query.from');
});

it("never shows another tenant's calls, in the list or by id", async () => {
  const otherList = await request(stack.app)
    .get('/v1/calls')
    .set({ authorization: `Bearer ${other.token}` });
  expect(otherList.body.data).toHaveLength(1);
  const res = await request(stack.app)
    .get(`/v1/calls/${ids[0]}`)
    .set({ authorization: `Bearer ${other.token}` });
  expect(res.status).toBe(404);
  expect(res.body.error.code).toBe('CALL_NOT_FOUND');
});

describe('recordings', () => {
  const wav = encodeWav(
    [Int16Array.from({ length: 4000 }, (_, i) => Math.round(8000 * Math.sin(i / 5))), new Int16Array(4000)],
    8000,
  );

  /** A finished voice call of `t` whose recording_path is `recordingPath`. */
  async function callWithRecording(t: SignedUp, recordingPath: string | null): Promise<string> {
    const id = randomUUID();
    const owner = await ownerClient(stack.config);
    try {
      await owner.query(
        `insert into calls (id, tenant_id, direction, channel, workflow_id, status, recording_path, recording_seconds)
         values ($1, $2, 'inbound', 'voice', $3, 'completed', $4, $5)`,
        [id, t.tenantId, `call:rec-${id}`, recordingPath, recordingPath ? 0.5 : null],
      );
    } finally {
      await owner.end();
    }
    return id;
  }

  const getRecording = (id: string, t: SignedUp = tenant) =>
    request(stack.app)
      .get(`/v1/calls/${id}/recording`)
      .set({ authorization: `Bearer ${t.token}` })
      .buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      });

  it('streams the WAV with its type and length, seekable, and links it from the call', async () => {
    mkdirSync(path.join(recordingsDir, tenant.tenantId), { recursive: true });
    const relative = path.join(tenant.tenantId, `${randomUUID()}.wav`);
    writeFileSync(path.join(recordingsDir, relative), wav);
    const id = await callWithRecording(tenant, relative);

    const res = await getRecording(id);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('audio/wav');
    expect(res.headers['content-length']).toBe(String(wav.length));
    expect(Buffer.compare(res.body as Buffer, wav)).toBe(0);

    const head = await getRecording(id).set('range', 'bytes=0-3');
    expect(head.status).toBe(206);
    expect((head.body as Buffer).toString('ascii')).toBe('RIFF');

    const detail = await request(stack.app).get(`/v1/calls/${id}`).set(auth());
    expect(detail.body.recording).toEqual({ url: `/v1/calls/${id}/recording`, seconds: 0.5 });
    const list = await request(stack.app).get('/v1/calls').query({ channel: 'voice' }).set(auth());
    expect(list.body.data.find((c: { id: string }) => c.id === id).recording).toEqual({
      url: `/v1/calls/${id}/recording`,
      seconds: 0.5,
    });
    expect(list.body.data.find((c: { id: string }) => c.id === ids[0])).toBeUndefined();
    const textCall = await request(stack.app).get(`/v1/calls/${ids[0]}`).set(auth());
    expect(textCall.body.recording).toBeNull();
  });

  it('404 RECORDING_NOT_FOUND when the call has none or the file is gone', async () => {
    const none = await getRecording(await callWithRecording(tenant, null));
    expect(none.status).toBe(404);
    expect(JSON.parse((none.body as Buffer).toString()).error.code).toBe('RECORDING_NOT_FOUND');

    const relative = `${randomUUID()}.wav`;
    writeFileSync(path.join(recordingsDir, relative), wav);
    const id = await callWithRecording(tenant, relative);
    expect((await getRecording(id)).status).toBe(200);
    unlinkSync(path.join(recordingsDir, relative));
    const gone = await getRecording(id);
    expect(gone.status).toBe(404);
    expect(JSON.parse((gone.body as Buffer).toString()).error.code).toBe('RECORDING_NOT_FOUND');
  });

  it('never serves a file outside RECORDINGS_DIR: `..` paths, absolute paths, symbolic links', async () => {
    const secret = path.join(outside, 'secret.wav');
    writeFileSync(secret, wav);
    const link = `${randomUUID()}.wav`;
    symlinkSync(secret, path.join(recordingsDir, link));
    for (const stored of ['../outside/secret.wav', secret, link, path.join('..', '..', secret)]) {
      const res = await getRecording(await callWithRecording(tenant, stored));
      expect({ stored, status: res.status }).toEqual({ stored, status: 404 });
      expect(JSON.parse((res.body as Buffer).toString()).error.code).toBe('RECORDING_NOT_FOUND');
    }
  });

  it("another tenant's recording is not found", async () => {
    const relative = `${randomUUID()}.wav`;
    writeFileSync(path.join(recordingsDir, relative), wav);
    const id = await callWithRecording(tenant, relative);
    const res = await getRecording(id, other);
    expect(res.status).toBe(404);
    expect(JSON.parse((res.body as Buffer).toString()).error.code).toBe('CALL_NOT_FOUND');
  });
});
