/** Where a call's recording lives on disk, for the calls API (playback) and privacy (export, erase). */
import { realpath } from 'node:fs/promises';
import path from 'node:path';

/**
 * The recording's real path inside the recordings folder, or undefined when it is missing or would
 * lie outside it (`..` in the stored path, or a symbolic link pointing out).
 */
export async function recordingFile(recordingsDir: string, stored: string): Promise<string | undefined> {
  try {
    const root = await realpath(recordingsDir);
    const file = await realpath(path.resolve(root, stored));
    return file.startsWith(root + path.sep) ? file : undefined;
  } catch {
    return undefined;
  }
}
