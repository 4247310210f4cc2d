/**
 * How every process reaches Temporal: a local dev server, a self-hosted cluster (optionally TLS or
 * mTLS) or Temporal Cloud (API key or mTLS). Built from config only.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import type { Config } from '../config';
import { tracingClientInterceptors } from '../lib/tracing';

export const DEFAULT_DEV_ADDRESS = '127.0.0.1:7233';

/** The address to dial: TEMPORAL_ADDRESS, or the dev server that `npm start` launches. */
export function temporalAddress(config: Config): string {
  return config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_DEV_PORT}`;
}

/** Link for engineers, used in logs, the start banner and (later) the call detail page. */
export function temporalUiUrl(config: Config): string {
  return config.TEMPORAL_UI_URL ?? `http://localhost:${config.TEMPORAL_DEV_UI_PORT}`;
}

function tlsOptions(config: Config) {
  const mtls = config.TEMPORAL_TLS_CERT_PATH && config.TEMPORAL_TLS_KEY_PATH;
  const wantsTls = config.TEMPORAL_TLS || Boolean(mtls) || Boolean(config.TEMPORAL_API_KEY);
  if (!wantsTls) return undefined;
  return {
    serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME,
    serverRootCACertificate: config.TEMPORAL_TLS_CA_PATH
      ? readFileSync(config.TEMPORAL_TLS_CA_PATH)
      : undefined,
    clientCertPair: mtls
      ? {
          crt: readFileSync(config.TEMPORAL_TLS_CERT_PATH),
          key: readFileSync(config.TEMPORAL_TLS_KEY_PATH),
        }
      : undefined,
  };
}

export function clientConnectionOptions(config: Config): ConnectionOptions {
  return {
    address: temporalAddress(config),
    tls: tlsOptions(config),
    apiKey: config.TEMPORAL_API_KEY,
    connectTimeout: '10s',
  };
}

export function workerConnectionOptions(config: Config): NativeConnectionOptions {
  return {
    address: temporalAddress(config),
    tls: tlsOptions(config),
    apiKey: config.TEMPORAL_API_KEY,
  };
}

export async function connectClient(config: Config): Promise<Client> {
  const connection = await Connection.connect(clientConnectionOptions(config));
  // With tracing on (lib/tracing.ts), starts, updates and signals carry the caller's span.
  return new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    interceptors: tracingClientInterceptors(),
  });
}

export function connectWorker(config: Config): Promise<NativeConnection> {
  return NativeConnection.connect(workerConnectionOptions(config));
}
