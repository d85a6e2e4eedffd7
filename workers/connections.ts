import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { Kafka, logLevel, type KafkaConfig as KafkaJsConfig } from 'kafkajs';
import { S3Client } from '@aws-sdk/client-s3';
import type { Connections } from '../activities/deps';
import type { Config, SecretRef } from '../contracts/config';
import { ConfigError, readSecret } from './config';

const MIN_MANIFEST_KEY_LENGTH = 32;

export type { Connections } from '../activities/deps';

/**
 * Builds clients for the platform from the config, reading secrets at the worker. Each check or
 * activity asks for what it needs and closes it, so a dead connection never outlives its use.
 */
export function createConnections(config: Config, configFile: string): Connections {
  const pgPassword = config.postgres.password ? readSecret(config.postgres.password, configFile) : undefined;
  const chPassword = config.clickhouse.password ? readSecret(config.clickhouse.password, configFile) : undefined;
  const s3Credentials =
    config.objectStore.accessKeyId && config.objectStore.secretAccessKey
      ? {
          accessKeyId: readSecret(config.objectStore.accessKeyId, configFile),
          secretAccessKey: readSecret(config.objectStore.secretAccessKey, configFile),
        }
      : undefined;

  const notifyWebhookUrl = config.notify.webhookUrl ? readSecret(config.notify.webhookUrl, configFile) : undefined;
  const manifestKey = (ref: SecretRef, field: string) => {
    const key = readSecret(ref, configFile);
    // A short key would make forging a manifest's signature a matter of guessing it.
    if (key.length < MIN_MANIFEST_KEY_LENGTH) {
      throw new ConfigError(configFile, [`${field}: the key is ${key.length} characters; at least ${MIN_MANIFEST_KEY_LENGTH} are needed (e.g. 32 random bytes in hex: openssl rand -hex 32)`]);
    }
    return key;
  };
  const manifestSigningKey = config.backup.manifestKey ? manifestKey(config.backup.manifestKey, 'backup.manifestKey') : undefined;
  const previousManifestKeys = config.backup.previousManifestKeys.map((ref, i) => manifestKey(ref, `backup.previousManifestKeys.${i}`));

  return {
    notifyWebhookUrl,
    manifestSigningKey,
    manifestVerifyingKeys: [...(manifestSigningKey ? [manifestSigningKey] : []), ...previousManifestKeys],
    postgres(database = config.postgres.maintenanceDatabase, timeoutMs = 30_000) {
      return {
        host: config.postgres.host,
        port: config.postgres.port,
        user: config.postgres.user,
        password: pgPassword,
        database,
        connectionTimeoutMillis: timeoutMs,
        application_name: 'ballast',
      };
    },
    clickhouse(timeoutMs = 300_000) {
      return createClient({
        url: config.clickhouse.url,
        username: config.clickhouse.user,
        password: chPassword ?? '',
        request_timeout: timeoutMs,
        // ClickHouse 18.16 rejects settings it does not know; send none by default.
        clickhouse_settings: {},
        // Failures reach the caller as errors and end up in reports; the client's own log would
        // print each refused connection a second time.
        log: { level: ClickHouseLogLevel.OFF },
      });
    },
    kafka(timeoutMs = 30_000) {
      const kafkaConfig: KafkaJsConfig = {
        clientId: config.kafka.clientId,
        brokers: config.kafka.brokers.map((b) => `${b.host}:${b.port}`),
        connectionTimeout: Math.min(timeoutMs, 10_000),
        requestTimeout: timeoutMs,
        retry: { retries: 2, initialRetryTime: 200 },
        logLevel: logLevel.NOTHING,
      };
      return new Kafka(kafkaConfig);
    },
    s3(timeoutMs = 60_000) {
      return new S3Client({
        endpoint: config.objectStore.endpoint,
        region: config.objectStore.region,
        forcePathStyle: config.objectStore.forcePathStyle,
        credentials: s3Credentials,
        maxAttempts: 2,
        // No CRC32 of every body sent and received on top of the sha256 ballast computes and
        // checks itself (the SDK's default since 3.729); operations that require a checksum
        // (DeleteObjects) still get one.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: { connectionTimeout: Math.min(timeoutMs, 10_000), requestTimeout: timeoutMs },
      });
    },
  };
}
