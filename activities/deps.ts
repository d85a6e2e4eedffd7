import type { S3Client } from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import type { ClientConfig } from 'pg';
import type { Config } from '../contracts/config';

/** A Postgres client's settings for one database, with the secret already read. */
export interface PostgresConnection extends ClientConfig {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

/** The platform's clients, built at the worker (workers/connections.ts) with its secrets. */
export interface Connections {
  postgres(database?: string, timeoutMs?: number): PostgresConnection;
  clickhouse(timeoutMs?: number): ClickHouseClient;
  kafka(timeoutMs?: number): Kafka;
  s3(timeoutMs?: number): S3Client;
  /** The notification webhook's URL (a secret), read at worker start; undefined: log only. */
  notifyWebhookUrl: string | undefined;
  /** The key manifests are signed with (backup.manifestKey), read at worker start; undefined: written unsigned. */
  manifestSigningKey: string | undefined;
  /** Every key a manifest's signature may be from: the signing key, then backup.previousManifestKeys. */
  manifestVerifyingKeys: string[];
}

/** What every activity factory is built from: the validated config and the platform's clients. */
export interface ActivityDeps {
  config: Config;
  connections: Connections;
}

/** The check timeout the input asked for, else the config's, in milliseconds. */
export function checkTimeoutMs(deps: ActivityDeps, timeoutSeconds?: number): number {
  return (timeoutSeconds ?? deps.config.healthCheck.timeoutSeconds) * 1000;
}
