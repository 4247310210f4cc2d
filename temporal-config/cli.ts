/**
 * Finds the Temporal CLI: TEMPORAL_CLI_PATH, the project's `.tools/bin`, or `temporal` on PATH;
 * otherwise builds it with `go install` (the one tag that installs that way), or explains how.
 * The finding and building is lib/go-tool.ts's; this module pins the version and words the errors.
 */
import { findGoTool, locateGoTool, PROJECT_ROOT, PROJECT_TOOLS_BIN } from '../lib/go-tool';

export { PROJECT_ROOT, PROJECT_TOOLS_BIN };

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';
const BINARY = 'temporal';

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

export interface LocateOptions {
  explicitPath?: string;
  /** Build with `go install` when nothing is found (default true). */
  build?: boolean;
  log?: (line: string) => void;
}

/** Where the CLI is without building anything, or undefined. */
export function findTemporalCli(explicitPath?: string): string | undefined {
  return findGoTool(BINARY, explicitPath);
}

export function locateTemporalCli(options: LocateOptions = {}): Promise<string> {
  return locateGoTool({
    name: BINARY,
    module: TEMPORAL_CLI_MODULE,
    label: 'the Temporal CLI',
    explicitPath: options.explicitPath,
    explicitPathVariable: 'TEMPORAL_CLI_PATH',
    build: options.build,
    log: options.log,
    notFound: (reason) => new TemporalCliNotFoundError(reason),
  });
}
