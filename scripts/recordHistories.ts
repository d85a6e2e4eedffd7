/**
 * Records workflow histories for the replay tests (test/workflows/replay.test.ts), so a change to
 * workflow code that breaks determinism fails a test instead of stranding running workflows.
 * Run it again only when a workflow changes on purpose in a way old runs need not replay:
 *
 *   node --import tsx scripts/recordHistories.ts
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import type { BackupManifest, BackupPiece, BackupPlan, ComponentResult, ManifestRequest } from '../workflows/backupTypes';
import type { healthCheck } from '../workflows/healthCheck';
import type { platformBackup } from '../workflows/platformBackup';
import type { SystemName } from '../workflows/types';
import { createTestEnvironment, workflowBundle } from '../test/helpers/workflowEnv';

const historiesDir = path.resolve(__dirname, '../test/workflows/histories');

const check = (system: SystemName, healthy: boolean) => async () => ({
  system,
  healthy,
  checkedAt: '2026-11-22T02:00:00.000Z',
  durationMs: 5,
  figures: { version: 'recorded' },
  ...(healthy ? {} : { error: 'connect ECONNREFUSED' }),
});

// Fake backup activities: the recording is about the workflow's sequence of commands.
const piece = (component: BackupPiece['component'], name: string): BackupPiece => ({
  component,
  name,
  key: `backups/recorded/${component}/${name}`,
  size: 100,
  sha256: '0'.repeat(64),
  rows: 10,
  snapshotAt: '2026-11-22T02:00:01.000Z',
  startedAt: '2026-11-22T02:00:01.000Z',
  finishedAt: '2026-11-22T02:00:02.000Z',
  durationMs: 1000,
});
const result = (component: BackupPiece['component'], name: string) => async (): Promise<ComponentResult> => ({
  component,
  unit: name,
  pieces: [piece(component, name)],
  resumed: false,
});
const plan: BackupPlan = {
  backupBucket: 'ballast-backups',
  concurrency: 2,
  environment: 'demo',
  tasks: [
    { component: 'postgres', kind: 'postgresDatabase', database: 'shop' },
    { component: 'clickhouse', kind: 'clickhouseTable', database: 'analytics', table: 'events' },
    { component: 'kafka', kind: 'kafkaMetadata' },
    { component: 'kafka', kind: 'kafkaTopic', topic: 'orders' },
    { component: 'objectStore', kind: 'bucket', bucket: 'platform-data' },
  ],
};
const backupActivities = {
  planBackup: async () => plan,
  backupPostgresDatabase: result('postgres', 'shop'),
  backupClickHouseTable: result('clickhouse', 'analytics.events'),
  backupKafkaMetadata: result('kafka', 'metadata'),
  backupKafkaTopicData: result('kafka', 'orders'),
  backupBucket: result('objectStore', 'platform-data'),
  writeManifest: async (request: ManifestRequest): Promise<BackupManifest> => ({
    formatVersion: 1,
    backupId: request.backupId,
    environment: request.environment,
    workflowId: request.workflowId,
    runId: request.runId,
    startedAt: request.startedAt,
    finishedAt: '2026-11-22T02:00:05.000Z',
    consistencyPoint: '2026-11-22T02:00:01.000Z',
    serverVersions: request.serverVersions,
    components: [],
    skipped: request.skipped,
    totals: { pieces: request.pieces.length, bytes: 500, rows: 50, messages: 0 },
    pieces: request.pieces,
  }),
  applyRetention: async () => ({
    policy: { daily: 7, weekly: 4, monthly: 6, incompleteGraceHours: 24 },
    kept: [],
    deleted: [],
    protectedObjects: 0,
  }),
};

async function main(): Promise<void> {
  const env = await createTestEnvironment();
  try {
    const taskQueue = `record-${randomUUID()}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        checkPostgres: check('postgres', true),
        checkClickHouse: check('clickhouse', false),
        checkKafka: check('kafka', true),
        checkObjectStore: async () => {
          throw new Error('recorded activity failure');
        },
        ...backupActivities,
      },
    });
    const healthyWorker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: `${taskQueue}-healthy`,
      workflowBundle: await workflowBundle(),
      activities: {
        checkPostgres: check('postgres', true),
        checkClickHouse: check('clickhouse', true),
        checkKafka: check('kafka', true),
        checkObjectStore: check('objectStore', true),
        ...backupActivities,
      },
    });
    const recordings: { name: string; input: object }[] = [
      { name: 'healthCheck-all', input: {} },
      { name: 'healthCheck-some', input: { systems: ['kafka', 'clickhouse'], timeoutSeconds: 3 } },
    ];
    await worker.runUntil(async () => {
      for (const { name, input } of recordings) {
        const handle = await env.client.workflow.start<typeof healthCheck>('healthCheck', {
          taskQueue,
          workflowId: name,
          args: [input],
        });
        await handle.result();
        const file = path.join(historiesDir, `${name}.json`);
        writeFileSync(file, `${historyToJSON(await handle.fetchHistory())}\n`);
        console.log(`recorded ${file}`);
      }
    });
    await healthyWorker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof platformBackup>('platformBackup', {
        taskQueue: `${taskQueue}-healthy`,
        workflowId: 'platformBackup-all',
        args: [{ skip: { objectStore: 'recorded skip' } }],
      });
      await handle.result();
      const file = path.join(historiesDir, 'platformBackup-all.json');
      writeFileSync(file, `${historyToJSON(await handle.fetchHistory())}\n`);
      console.log(`recorded ${file}`);
    });
  } finally {
    await env.teardown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
