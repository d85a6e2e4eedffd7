import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { Kafka, logLevel, type KafkaConfig as KafkaJsConfig } from 'kafkajs';
import { S3Client } from '@aws-sdk/client-s3';
import type { Connections } from '../activities/deps';
import type { Config } from '../contracts/config';
import { readSecret } from './config';

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

  return {
    notifyWebhookUrl,
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
        requestHandler: { connectionTimeout: Math.min(timeoutMs, 10_000), requestTimeout: timeoutMs },
      });
    },
  };
}
