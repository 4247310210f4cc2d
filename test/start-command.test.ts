/**
 * The README's first command, `npm start`, on embedded defaults (no DATABASE_URL, no
 * TEMPORAL_ADDRESS), in a fresh data folder and on free ports: it reaches /health/ready = ok,
 * seeds the demo tenant (agents, demo line), and a Ctrl-C (SIGINT to its process group) stops
 * every process cleanly.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, isPortOpen, waitUntil } from '../lib/net';

const ROOT = path.resolve(__dirname, '..');

it('npm start brings up the whole stack, ready, and Ctrl-C stops all of it', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'parley-start-'));
  chmodSync(dataDir, 0o755);
  const ports = {
    API_PORT: await freePort(),
    RELAY_PORT: await freePort(),
    EMBEDDED_POSTGRES_PORT: await freePort(),
    TEMPORAL_DEV_PORT: await freePort(),
    TEMPORAL_DEV_UI_PORT: await freePort(),
  };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dataDir,
    NODE_ENV: 'development',
    LOG_LEVEL: 'info',
  };
  delete env.DATABASE_URL;
  delete env.TEMPORAL_ADDRESS;
  for (const [key, port] of Object.entries(ports)) env[key] = String(port);
  env.PUBLIC_BASE_URL = `http://localhost:${ports.API_PORT}`;

  const child = spawn('npm', ['start'], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? String(code))),
  );

  try {
    await waitUntil(
      'npm start to print that Parley is running',
      () => Promise.resolve(output.includes('Parley is running.')),
      150_000,
      250,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- output ---\n${output.slice(-4000)}`);
    });
    const ready = await fetch(`http://127.0.0.1:${ports.API_PORT}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ok',
      checks: { postgres: { status: 'ok' }, temporal: { status: 'ok' } },
    });

    expect(output).toContain(`http://localhost:${ports.API_PORT}/docs`);
    expect(output).toContain(`http://localhost:${ports.TEMPORAL_DEV_UI_PORT}`);
    const credentials = /Demo sign-in\s+(\S+) \/ (\S+)/.exec(output);
    expect(credentials).not.toBeNull();
    const login = await fetch(`http://127.0.0.1:${ports.API_PORT}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: credentials![1], password: credentials![2] }),
    });
    expect(login.status).toBe(200);
    const session = (await login.json()) as { token: string; tenant: { status: string } };
    expect(session.tenant.status).toBe('active');
    // The demo agent is there, published, and talks without any LLM configured.
    const agents = (await (
      await fetch(`http://127.0.0.1:${ports.API_PORT}/v1/agents`, {
        headers: { authorization: `Bearer ${session.token}` },
      })
    ).json()) as { data: { id: string; name: string; publishedVersion: number | null }[] };
    const booking = agents.data.find((a) => a.name === 'Demo booking line');
    expect(booking?.publishedVersion).toBe(1);
    // The demo line rings it.
    const numbers = (await (
      await fetch(`http://127.0.0.1:${ports.API_PORT}/v1/phone-numbers`, {
        headers: { authorization: `Bearer ${session.token}` },
      })
    ).json()) as { data: { number: string; label: string; agentId: string | null }[] };
    expect(numbers.data).toEqual([
      expect.objectContaining({ number: '+15005550006', label: 'Demo line', agentId: booking!.id }),
    ]);
    const chat = await fetch(`http://127.0.0.1:${ports.API_PORT}/v1/conversations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${session.token}` },
      body: JSON.stringify({ agentId: booking!.id }),
    });
    expect(chat.status).toBe(201);
    expect(((await chat.json()) as { reply: { text: string } }).reply.text).toContain(
      'May I have your name?',
    );
    expect((await fetch(`http://127.0.0.1:${ports.RELAY_PORT}/health/ready`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${ports.TEMPORAL_DEV_UI_PORT}/`)).status).toBe(200);

    process.kill(-child.pid!, 'SIGINT');
    // npm itself ends by SIGINT (or 130) after a Ctrl-C once its script has finished; the launcher exits 0.
    const code = await exited;
    if (!['0', '130', 'SIGINT'].includes(code))
      throw new Error(`npm start exited with ${code}\n--- output ---\n${output.slice(-3000)}`);
    for (const port of Object.values(ports)) expect(await isPortOpen(port)).toBe(false);
    expect(output).toContain('stopped.');
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 240_000);
