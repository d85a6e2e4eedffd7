import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/activity';
import pg from 'pg';
import type { BackupPlan, BackupPlanRequest, BackupTask, Component, SkippedComponent } from '../../contracts/backupTypes';
import { manifestKey } from './manifest';
import { headObject, listBackupIds } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';
import { Failure } from '../../contracts/failures';
import { listPartitions } from '../clickhouse/partitions';

/**
 * Resolves a backup request against the config and the live platform, before anything is
 * written: every database, table, topic and bucket it names must exist. Problems are collected
 * and reported together, each naming its input field, in one non-retryable failure.
 */
export function createBackupPlanActivities(deps: ActivityDeps) {
  const { config, connections } = deps;

  return {
    async planBackup(request: BackupPlanRequest): Promise<BackupPlan> {
      const problems: string[] = [];
      const tasks: BackupTask[] = [];
      const wanted = (component: BackupTask['component']) =>
        request.components.includes(component) && !request.skip.some((s) => s.component === component);
      // What the input left out of what the config lists: the backup will be partial.
      const narrowed: SkippedComponent[] = [];
      const leftOut = (component: Component, field: string, configured: string[], chosen: string[]) => {
        const missing = configured.filter((name) => !chosen.includes(name));
        if (missing.length > 0) narrowed.push({ component, reason: `${field} left out ${missing.join(', ')}` });
      };

      if (wanted('postgres')) {
        const databases = request.postgresDatabases ?? config.postgres.databases;
        databases.forEach((db, i) => {
          if (!config.postgres.databases.includes(db)) {
            problems.push(`input.postgresDatabases.${i}: "${db}" is not a configured Postgres database (configured: ${config.postgres.databases.join(', ')})`);
          }
        });
        const present = await postgresDatabasesPresent(databases);
        for (const db of databases.filter((d) => config.postgres.databases.includes(d) && !present.has(d))) {
          problems.push(`postgres: database "${db}" does not exist on the server`);
        }
        for (const database of databases) tasks.push({ component: 'postgres', kind: 'postgresDatabase', database });
        leftOut('postgres', 'input.postgresDatabases', config.postgres.databases, databases);
      }

      if (wanted('clickhouse')) {
        const requested = request.clickhouseTables ?? config.clickhouse.databases.map((d) => d.name);
        const existing = await clickhouseTables();
        requested.forEach((entry, i) => {
          const [database, table] = entry.split('.', 2) as [string, string | undefined];
          const configured = config.clickhouse.databases.find((d) => d.name === database);
          if (!configured) {
            problems.push(`input.clickhouseTables.${i}: database "${database}" is not configured (configured: ${config.clickhouse.databases.map((d) => d.name).join(', ')})`);
            return;
          }
          const inDatabase = existing.filter((t) => t.database === database).map((t) => t.name);
          const tables = table ? [table] : configured.tables.length ? configured.tables : inDatabase;
          for (const name of tables) {
            if (!inDatabase.includes(name)) {
              problems.push(`${table ? `input.clickhouseTables.${i}` : `clickhouse.databases.${database}.tables`}: table "${database}.${name}" does not exist`);
            } else {
              tasks.push({ component: 'clickhouse', kind: 'clickhouseTable', database, table: name });
            }
          }
        });
        const everyTable = config.clickhouse.databases.flatMap((d) =>
          (d.tables.length ? d.tables : existing.filter((t) => t.database === d.name).map((t) => t.name)).map((t) => `${d.name}.${t}`),
        );
        const chosen = tasks.flatMap((t) => (t.kind === 'clickhouseTable' ? [`${t.database}.${t.table}`] : []));
        leftOut('clickhouse', 'input.clickhouseTables', everyTable, chosen);
        if (request.clickhousePartitions) await narrowToPartitions(request.clickhousePartitions);
      } else if (request.clickhousePartitions) {
        problems.push('input.clickhousePartitions: ClickHouse is not being backed up (input.components or input.skip leaves it out)');
      }

      if (wanted('kafka')) {
        tasks.push({ component: 'kafka', kind: 'kafkaMetadata' });
        const topics = request.kafkaDataTopics ?? config.backup.kafkaDataTopics;
        const existing = new Set(await kafkaTopics());
        topics.forEach((topic, i) => {
          if (!existing.has(topic)) problems.push(`${request.kafkaDataTopics ? `input.kafkaDataTopics.${i}` : 'backup.kafkaDataTopics'}: topic "${topic}" does not exist`);
          else tasks.push({ component: 'kafka', kind: 'kafkaTopic', topic });
        });
        leftOut('kafka', 'input.kafkaDataTopics', config.backup.kafkaDataTopics, topics);
      }

      const s3 = connections.s3(30_000);
      try {
        if (wanted('objectStore')) {
          const buckets = request.buckets ?? config.objectStore.buckets;
          for (const [i, bucket] of buckets.entries()) {
            const field = request.buckets ? `input.buckets.${i}` : 'objectStore.buckets';
            if (!config.objectStore.buckets.includes(bucket)) {
              problems.push(`${field}: "${bucket}" is not a configured bucket (configured: ${config.objectStore.buckets.join(', ') || 'none'})`);
            } else if (!(await bucketExists(bucket))) {
              problems.push(`${field}: bucket "${bucket}" does not exist`);
            } else {
              tasks.push({ component: 'objectStore', kind: 'bucket', bucket });
            }
          }
          leftOut('objectStore', 'input.buckets', config.objectStore.buckets, buckets);
        }
        const backupBucket = config.objectStore.backupBucket;
        if (!(await bucketExists(backupBucket))) {
          problems.push(`objectStore.backupBucket: bucket "${backupBucket}" does not exist`);
        }
        if (problems.length) {
          throw ApplicationFailure.nonRetryable(`platformBackup: invalid input: ${problems.join('; ')}`, Failure.InvalidInput, { problems });
        }
        return {
          backupBucket,
          concurrency: config.backup.concurrency,
          environment: config.environment,
          tasks,
          previousBackupId: await newestCompleteBackup(),
          narrowed,
        };
      } finally {
        s3.destroy();
      }

      /**
       * input.clickhousePartitions: each table must be one this backup covers and each partition id
       * an active partition of it. The tasks keep only those partitions, and the backup is partial.
       */
      async function narrowToPartitions(wantedPartitions: Record<string, string[]>): Promise<void> {
        for (const [name, ids] of Object.entries(wantedPartitions)) {
          const field = `input.clickhousePartitions.${name}`;
          const task = tasks.find((t) => t.kind === 'clickhouseTable' && `${t.database}.${t.table}` === name);
          if (task?.kind !== 'clickhouseTable') {
            problems.push(`${field}: "${name}" is not a table this backup covers (it backs up: ${tasks.flatMap((t) => (t.kind === 'clickhouseTable' ? [`${t.database}.${t.table}`] : [])).join(', ') || 'no ClickHouse table'})`);
            continue;
          }
          const present = new Set(await clickhousePartitionIds(task.database, task.table));
          ids.forEach((id, i) => {
            if (!present.has(id)) problems.push(`${field}.${i}: partition "${id}" of ${name} does not exist (its partitions: ${[...present].join(', ') || 'none'})`);
          });
          task.partitions = [...new Set(ids)];
          const others = [...present].filter((id) => !ids.includes(id));
          narrowed.push({ component: 'clickhouse', reason: `input.clickhousePartitions narrowed ${name} to partition(s) ${task.partitions.join(', ')}${others.length ? `, leaving out ${others.join(', ')}` : ''}` });
        }
      }

      async function bucketExists(bucket: string): Promise<boolean> {
        try {
          await s3.send(new HeadBucketCommand({ Bucket: bucket }));
          return true;
        } catch (err) {
          const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
          if (status === 404 || status === 403) return false;
          throw err;
        }
      }

      /** The newest backup folder with a manifest: objects unchanged since it are referenced. */
      async function newestCompleteBackup(): Promise<string | undefined> {
        for (const id of (await listBackupIds(s3, config.objectStore.backupBucket)).reverse()) {
          if (await headObject(s3, config.objectStore.backupBucket, manifestKey(id))) return id;
        }
        return undefined;
      }
    },
  };

  async function postgresDatabasesPresent(databases: string[]): Promise<Set<string>> {
    const client = new pg.Client(connections.postgres(undefined, 30_000));
    await client.connect();
    try {
      const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1::text[])', [databases]);
      return new Set(rows.map((r) => r.datname));
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async function clickhouseTables(): Promise<{ database: string; name: string }[]> {
    const client = connections.clickhouse(30_000);
    try {
      // ClickHouse 18.16 has no query parameters; the names are config identifiers, validated by
      // the config schema to letters, digits and underscores.
      const names = config.clickhouse.databases.map((d) => `'${d.name}'`).join(', ');
      const result = await client.query({
        query: `SELECT database, name FROM system.tables WHERE database IN (${names}) AND NOT is_temporary`,
        format: 'JSONEachRow',
      });
      return await result.json<{ database: string; name: string }>();
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  /** The table's active partition ids (system.parts). */
  async function clickhousePartitionIds(database: string, table: string): Promise<string[]> {
    const client = connections.clickhouse(30_000);
    try {
      return (await listPartitions(client, database, table)).map((p) => p.partitionId);
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  async function kafkaTopics(): Promise<string[]> {
    const admin = connections.kafka(30_000).admin();
    await admin.connect();
    try {
      return await admin.listTopics();
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}
