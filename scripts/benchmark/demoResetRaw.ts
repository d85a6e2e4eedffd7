/**
 * The raw demo reset demoReset is measured against: what a shell script of the platforms' own
 * tools does to the same targets, one after another, as `make demo-reset` did.
 *
 * - Kafka: `kafka-get-offsets` for every partition's end, then `kafka-delete-records` up to it
 *   (topics and configs stay).
 * - Postgres: `psql -c "TRUNCATE ... RESTART IDENTITY CASCADE"`, one statement per database.
 * - ClickHouse: `clickhouse-client --query "TRUNCATE TABLE ..."` per table.
 * - Buckets: every object version and delete marker deleted, 1,000 per request. No aws CLI or mc
 *   is installed here, so the script's `aws s3api delete-objects` loop is done with the same S3
 *   calls through the SDK.
 *
 * The targets are the ones the workflow wipes (the bench lists them from the demo platform), so
 * both do the same work.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteObjectsCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { runKafkaTool } from '../../localStack/kafkaTools';
import { readSecret, type LoadedConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';
import { qualifiedName } from '../../activities/clickhouse/sql';
import { run, timed } from './run';

export interface RawResetTargets {
  topics: string[];
  /** "schema.table" names per database. */
  postgres: { database: string; tables: string[] }[];
  clickhouse: { database: string; tables: string[] }[];
  buckets: string[];
}

/** Wall time in ms of the raw reset of the targets. */
export async function rawDemoReset(loaded: LoadedConfig, targets: RawResetTargets): Promise<number> {
  const { config } = loaded;
  const bootstrap = config.kafka.brokers.map((b) => `${b.host}:${b.port}`).join(',');
  const scratch = mkdtempSync(path.join(tmpdir(), 'ballast-bench-reset-'));
  const { ms } = await timed(async () => {
    const { topics } = targets;
    if (topics.length > 0) {
      const ends = await runKafkaTool('org.apache.kafka.tools.GetOffsetShell', [
        '--bootstrap-server', bootstrap, '--time', '-1', '--topic', topics.map(escapeRegex).join('|'),
      ]);
      const partitions = ends
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [topic, partition, offset] = line.split(':');
          return { topic: topic!, partition: Number(partition), offset: Number(offset) };
        });
      const offsetsFile = path.join(scratch, 'offsets.json');
      writeFileSync(offsetsFile, JSON.stringify({ version: 1, partitions }));
      await runKafkaTool('org.apache.kafka.tools.DeleteRecordsCommand', ['--bootstrap-server', bootstrap, '--offset-json-file', offsetsFile]);
    }

    const pg = createConnections(config, loaded.path).postgres();
    for (const db of targets.postgres) {
      if (db.tables.length === 0) continue;
      const tables = db.tables.map((t) => t.split('.').map((part) => `"${part.replace(/"/g, '""')}"`).join('.')).join(', ');
      await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', db.database, '-c', `TRUNCATE ${tables} RESTART IDENTITY CASCADE`], {
        ...process.env,
        PGPASSWORD: pg.password ?? '',
      });
    }

    const chPassword = config.clickhouse.password ? readSecret(config.clickhouse.password, loaded.path) : '';
    for (const db of targets.clickhouse) {
      for (const table of db.tables) {
        await run('clickhouse-client', [
          '--host', new URL(config.clickhouse.url).hostname, '--port', String(config.clickhouse.nativePort), '--user', config.clickhouse.user,
          ...(chPassword ? ['--password', chPassword] : []),
          '--query', `TRUNCATE TABLE ${qualifiedName(db.database, table)}`,
        ]);
      }
    }

    const s3 = createConnections(config, loaded.path).s3(300_000);
    try {
      for (const bucket of targets.buckets) await deleteEveryVersion(s3, bucket);
    } finally {
      s3.destroy();
    }
  });
  return ms;
}

async function deleteEveryVersion(s3: ReturnType<ReturnType<typeof createConnections>['s3']>, bucket: string): Promise<void> {
  for (;;) {
    const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, MaxKeys: 1000 }));
    const objects = [...(listed.Versions ?? []), ...(listed.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key!, VersionId: v.VersionId }));
    if (objects.length === 0) return;
    const deleted = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }));
    if (deleted.Errors?.length) throw new Error(`bucket ${bucket}: could not delete ${deleted.Errors[0]!.Key}: ${deleted.Errors[0]!.Message}`);
  }
}

function escapeRegex(topic: string): string {
  return topic.replace(/[.]/g, '\\.');
}
