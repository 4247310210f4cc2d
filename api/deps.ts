/** What the api needs from the outside world, passed in by api/main.ts (or a test). */
import type { Client } from '@temporalio/client';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../config';
import type { Logger } from '../lib/logger';

export interface ApiDeps {
  config: Config;
  orm: MikroORM;
  temporal: Client;
  logger: Logger;
}
