/** The relay process (`npm run relay`): holds live audio sockets; speaks on queue relay.<instanceId>. */
import os from 'node:os';
import { loadConfigOrExit } from '../config';
import { createLogger } from '../lib/logger';
import { onShutdown } from '../lib/shutdown';
import { createRelayServer } from './server';

function main() {
  const config = loadConfigOrExit();
  const logger = createLogger(config, 'relay');
  const instanceId = config.RELAY_INSTANCE_ID ?? `${os.hostname()}-${process.pid}`;
  const relay = createRelayServer({ instanceId, maxPayloadBytes: config.RELAY_MAX_PAYLOAD_BYTES, logger });
  relay.server.listen(config.RELAY_PORT, config.RELAY_HOST, () => {
    logger.info(
      { instanceId, port: config.RELAY_PORT },
      `relay listening on ${config.RELAY_HOST}:${config.RELAY_PORT}`,
    );
  });
  relay.server.on('error', (err) => {
    logger.fatal({ err }, 'relay could not listen');
    process.exit(1);
  });
  onShutdown(logger, [() => relay.drain(20_000)], 30_000);
}

main();
