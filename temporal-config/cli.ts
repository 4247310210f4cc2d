/**
 * Finds the Temporal CLI: TEMPORAL_CLI_PATH, `temporal` on PATH, or the project's `.tools/bin`;
 * otherwise builds it with `go install` (the one tag that installs that way), or explains how.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import path from 'node:path';

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';
export const PROJECT_ROOT = path.resolve(__dirname, '..');
export const PROJECT_TOOLS_BIN = path.join(PROJECT_ROOT, '.tools', 'bin');

export class TemporalCliNotFoundError extends Error {
  constructor(reason: string) {
    super(
      `The Temporal CLI was not found and could not be built (${reason}).\n` +
        `Install Go (https://go.dev/dl) and run:\n` +
        `  GOBIN=${PROJECT_TOOLS_BIN} go install ${TEMPORAL_CLI_MODULE}\n` +
        `or put a 'temporal' binary on PATH, or set TEMPORAL_CLI_PATH, or set TEMPORAL_ADDRESS to use an existing server.`,
    );
    this.name = 'TemporalCliNotFoundError';
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(binary: string, envPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, binary);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export interface LocateOptions {
  explicitPath?: string;
  /** Build with `go install` when nothing is found (default true). */
  build?: boolean;
  log?: (line: string) => void;
}

/** Where the CLI is without building anything, or undefined. */
export function findTemporalCli(explicitPath?: string): string | undefined {
  if (explicitPath) return isExecutable(explicitPath) ? explicitPath : undefined;
  const projectBinary = path.join(PROJECT_TOOLS_BIN, 'temporal');
  if (isExecutable(projectBinary)) return projectBinary;
  return onPath('temporal');
}

export async function locateTemporalCli(options: LocateOptions = {}): Promise<string> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (options.explicitPath && !isExecutable(options.explicitPath)) {
    throw new TemporalCliNotFoundError(`TEMPORAL_CLI_PATH=${options.explicitPath} is not an executable file`);
  }
  const found = findTemporalCli(options.explicitPath);
  if (found) return found;
  if (options.build === false) throw new TemporalCliNotFoundError('building was not allowed');
  const go = onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) throw new TemporalCliNotFoundError("'go' is not on PATH");

  mkdirSync(PROJECT_TOOLS_BIN, { recursive: true });
  log(
    `Building the Temporal CLI once with 'go install ${TEMPORAL_CLI_MODULE}' into ${PROJECT_TOOLS_BIN} (a few minutes)…`,
  );
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', TEMPORAL_CLI_MODULE], {
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
      log(
        `  …still building the Temporal CLI: ${Math.round((Date.now() - started) / 1000)} s, ${downloaded} modules fetched`,
      );
    }, 15_000);
    child.on('error', (err) => {
      clearInterval(ticker);
      reject(err);
    });
    child.on('exit', (code) => {
      clearInterval(ticker);
      if (code === 0) resolve();
      else reject(new TemporalCliNotFoundError(`go install exited with ${code}:\n${tail}`));
    });
  });
  const built = path.join(PROJECT_TOOLS_BIN, 'temporal');
  if (!isExecutable(built))
    throw new TemporalCliNotFoundError(`go install succeeded but ${built} is missing`);
  log(`Temporal CLI built in ${Math.round((Date.now() - started) / 1000)} s: ${built}`);
  return built;
}
