import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { readSecret, type Config } from './config';

/** Connection options shared by the worker's NativeConnection and clients' Connection. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
}

/**
 * Builds the Temporal connection from the config: plain for the local dev server, TLS (optionally
 * with a client certificate) and/or an API key for a remote cluster such as Temporal Cloud.
 */
export function temporalConnectionOptions(config: Config, configFile: string): TemporalConnectionOptions {
  const { temporal } = config;
  const options: TemporalConnectionOptions = { address: temporal.address };
  if (temporal.tls !== false) {
    const read = (file: string | undefined) =>
      file === undefined ? undefined : readFileSync(path.resolve(path.dirname(configFile), file));
    const crt = read(temporal.tls.certFile);
    const key = read(temporal.tls.keyFile);
    options.tls = {
      serverNameOverride: temporal.tls.serverName,
      serverRootCACertificate: read(temporal.tls.caFile),
      clientCertPair: crt && key ? { crt, key } : undefined,
    };
  }
  if (temporal.apiKey) options.apiKey = readSecret(temporal.apiKey, configFile);
  return options;
}
