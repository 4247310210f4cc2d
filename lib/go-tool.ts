/**
 * Finds a developer tool that is published as a Go module (the Temporal CLI, stripe-mock): an explicit
 * path, the project's `.tools/bin`, or PATH; otherwise builds it once with `go install` into
 * `.tools/bin`, logging progress, or explains how to get it.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import path from 'node:path';

export const PROJECT_ROOT = path.resolve(__dirname, '..');
export const PROJECT_TOOLS_BIN = path.join(PROJECT_ROOT, '.tools', 'bin');

/** Where Go lives on these machines when it is not on PATH. */
const GO_FALLBACK = '/usr/local/go/bin/go';
const PROGRESS_EVERY_MS = 15_000;

export class GoToolNotFoundError extends Error {
  constructor(name: string, module: string, reason: string) {
    super(
      `${name} was not found and could not be built (${reason}).\n` +
        `Install Go (https://go.dev/dl) and run:\n` +
        `  GOBIN=${PROJECT_TOOLS_BIN} go install ${module}\n` +
        `or put a '${name}' binary on PATH.`,
    );
    this.name = 'GoToolNotFoundError';
  }
}

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function onPath(binary: string, envPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, binary);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The `go` command: on PATH, or at Go's default install location. */
export function findGo(): string | undefined {
  return onPath('go') ?? (isExecutable(GO_FALLBACK) ? GO_FALLBACK : undefined);
}

export interface GoToolOptions {
  /** The binary's name, which `go install` gives it (the module path's last element). */
  name: string;
  /** What `go install` takes, pinned: `github.com/stripe/stripe-mock@v0.203.0`. */
  module: string;
  /** A path the user chose (e.g. from an env variable); it must be executable, nothing else is tried. */
  explicitPath?: string;
  /** Where explicitPath came from, for messages: `STRIPE_MOCK_PATH`. */
  explicitPathVariable?: string;
  /** Build with `go install` when nothing is found (default true). */
  build?: boolean;
  log?: (line: string) => void;
  /** How errors are reported; a tool can give its own class and hints (default GoToolNotFoundError). */
  notFound?: (reason: string) => Error;
  /** What the tool is called in log lines (default `name`). */
  label?: string;
}

/** Where the tool is without building anything, or undefined. */
export function findGoTool(name: string, explicitPath?: string): string | undefined {
  if (explicitPath) return isExecutable(explicitPath) ? explicitPath : undefined;
  const projectBinary = path.join(PROJECT_TOOLS_BIN, name);
  if (isExecutable(projectBinary)) return projectBinary;
  return onPath(name);
}

export async function locateGoTool(options: GoToolOptions): Promise<string> {
  const { name, module } = options;
  const label = options.label ?? name;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const notFound = options.notFound ?? ((reason: string) => new GoToolNotFoundError(name, module, reason));

  if (options.explicitPath && !isExecutable(options.explicitPath)) {
    const given = options.explicitPathVariable
      ? `${options.explicitPathVariable}=${options.explicitPath}`
      : options.explicitPath;
    throw notFound(`${given} is not an executable file`);
  }
  const found = findGoTool(name, options.explicitPath);
  if (found) return found;
  if (options.build === false) throw notFound('building was not allowed');
  const go = findGo();
  if (!go) throw notFound("'go' is not on PATH");

  mkdirSync(PROJECT_TOOLS_BIN, { recursive: true });
  log(`Building ${label} once with 'go install ${module}' into ${PROJECT_TOOLS_BIN} (a few minutes)…`);
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 1000);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', module], {
      env: { ...process.env, GOBIN: PROJECT_TOOLS_BIN, GOFLAGS: '-mod=mod' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let downloaded = 0;
    let tail = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-4000);
      downloaded += (text.match(/go: downloading/g) ?? []).length;
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const ticker = setInterval(() => {
      log(`  …still building ${label}: ${seconds()} s, ${downloaded} modules fetched`);
    }, PROGRESS_EVERY_MS);
    child.on('error', (err) => {
      clearInterval(ticker);
      reject(notFound(`could not run ${go}: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      clearInterval(ticker);
      if (code === 0) resolve();
      else reject(notFound(`go install exited with ${code ?? signal}:\n${tail}`));
    });
  });
  const built = path.join(PROJECT_TOOLS_BIN, name);
  if (!isExecutable(built)) throw notFound(`go install succeeded but ${built} is missing`);
  log(`Built ${label} in ${seconds()} s: ${built}`);
  return built;
}
