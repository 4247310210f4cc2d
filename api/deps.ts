/** What the api needs from the outside world, passed in by api/main.ts (or a test). */
import type { Client } from '@temporalio/client';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../config';
import type { Logger } from '../lib/logger';
import type { SpeechStreams } from './speech-streams';

export interface ApiDeps {
  config: Config;
  orm: MikroORM;
  temporal: Client;
  logger: Logger;
  /** Present when this process hosts `speak` for streamed (SSE) replies. */
  speechStreams?: SpeechStreams;
}
