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
import { createApprovalActivities } from '../activities/approval/approvals';
import type { ActivityDeps } from '../activities/deps';
import type { Config } from '../contracts/config';
import type { BackupPiece, BackupPlan, ManifestRequest, ManifestSummary, StoredPieces } from '../contracts/backupTypes';
import type { healthCheck } from '../workflows/healthCheck';
import type { platformBackup } from '../workflows/platformBackup';
import { approveSignal } from '../workflows/approval';
import type { drDrill } from '../workflows/drDrill';
import type { kafkaRollingRestart } from '../workflows/kafkaRollingRestart';
import { restoreStatusQuery, type restore } from '../workflows/restore';
import type { RestoreTargets } from '../contracts/restoreTypes';
import type { SystemName } from '../contracts/healthTypes';
import { createTestEnvironment, workflowBundle } from '../localStack/workflowEnv';

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
const result = (component: BackupPiece['component'], name: string) => async (): Promise<StoredPieces> => ({
  component,
  unit: name,
  key: `backups/recorded/piece-lists/${component} ${name}.json`,
  sha256: '0'.repeat(64),
  pieces: 1,
  bytes: 100,
  rows: 10,
  messages: 0,
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
  writeManifest: async (request: ManifestRequest): Promise<ManifestSummary> => ({
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
    totals: { pieces: request.pieceLists.length, bytes: 500, rows: 50, messages: 0 },
    complete: request.skipped.length === 0,
    lacks: request.skipped,
  }),
  applyRetention: async () => ({
    policy: { daily: 7, weekly: 4, monthly: 6, partial: 3, incompleteGraceHours: 24 },
    kept: [],
    deleted: [],
    protectedObjects: 0,
  }),
};

// Fake restore activities, for the same reason.
const restoreActivities = {
  restoreSettings: async () => ({
    environment: 'demo',
    rtoTargetMinutes: 60,
    rpoTargetMinutes: 1440,
    approval: { unsignedAllowed: true, approvers: ['bob'], fourEyes: true, reminderAfterMinutes: 15, timeoutMinutes: 60 },
    concurrency: 2,
    drill: { suffix: '_drill', bucketSuffix: '-drill', scheduleId: 'ballast-monthly-drill', schedulePreApproved: true, scratchPreApproved: true },
    postgresDatabases: ['shop'],
    clickhouseDatabases: ['analytics'],
    buckets: ['platform-data'],
    backupBucket: 'ballast-backups',
  }),
  planRestore: async (req: { targets?: RestoreTargets; scratch?: { suffix: string; bucketSuffix: string } }) => ({
    backupId: 'recorded',
    environment: 'demo',
    consistencyPoint: '2026-11-22T02:00:01.000Z',
    backupStartedAt: '2026-11-22T02:00:00.000Z',
    components: ['postgres', 'objectStore'],
    notInBackup: [],
    backupComplete: true,
    backupLacks: [],
    manifestKeyId: '0123abcd',
    warnings: [],
    tasks: [
      { component: 'postgres', kind: 'postgresDatabase', database: 'shop', target: req.scratch ? `shop${req.scratch.suffix}` : (req.targets?.postgres.shop ?? 'shop'), index: 0, bytes: 100, pieces: 1 },
      { component: 'objectStore', kind: 'bucket', bucket: 'platform-data', target: req.scratch ? `platform-data${req.scratch.bucketSuffix}` : (req.targets?.buckets['platform-data'] ?? 'platform-data'), index: 1, bytes: 100, pieces: 1 },
    ],
    targets: req.scratch
      ? { postgres: { shop: `shop${req.scratch.suffix}` }, clickhouse: {}, kafkaSuffix: req.scratch.suffix, buckets: { 'platform-data': `platform-data${req.scratch.bucketSuffix}` } }
      : (req.targets ?? { postgres: {}, clickhouse: {}, kafkaSuffix: '', buckets: {} }),
    actions: [],
    planHash: `sha256:${'1'.repeat(64)}`,
    totalBytes: 200,
    checkedObjects: 2,
    checksumsVerified: true,
    stored: { key: 'reports/plans/recorded/run.json', sha256: '2'.repeat(64), planHash: `sha256:${'1'.repeat(64)}` },
  }),
  restorePostgresDatabase: async () => ({ component: 'postgres', unit: 'postgres shop', bytes: 100, durationMs: 5, notes: [] }),
  restoreBucket: async () => ({ component: 'objectStore', unit: 'bucket platform-data', bytes: 100, durationMs: 5, notes: [] }),
  verifyPostgresDatabase: async () => ({ component: 'postgres', unit: 'postgres shop', ok: true, checks: [] }),
  verifyBucket: async () => ({ component: 'objectStore', unit: 'bucket platform-data', ok: true, checks: [] }),
  writeRestoreReport: async (report: { reportKey: string }) => report.reportKey,
  notify: async () => ({ delivered: 'log' }),
  // The real ones: the requester and a drill's parent come from Temporal itself.
  ...createApprovalActivities({ config: { environment: 'demo', approvals: {} } as Config, connections: {} } as ActivityDeps),
  listDrillReports: async () => [],
  acquireRestoreLeases: async (r: { targets: string[] }) => r.targets,
  releaseRestoreLeases: async () => undefined,
  dropPostgresDatabase: async () => ({ dropped: true }),
  dropClickHouseDatabase: async () => ({ dropped: true }),
  deleteScratchBucket: async () => ({ deletedObjects: 1 }),
  deleteKafkaRestoreTargets: async () => ({ topics: [], groups: [] }),
};

// Fake broker activities, for the same reason: three brokers, broker 2 the quorum leader.
const rollActivities = {
  kafkaRollSettings: async () => ({
    brokers: [1, 2, 3],
    backend: 'local',
    approval: { unsignedAllowed: true, approvers: [], fourEyes: true, reminderAfterMinutes: 15, timeoutMinutes: 60 },
    safetyTimeoutSeconds: 60,
    safetyBackoffSeconds: 1,
    safetyBackoffMaxSeconds: 5,
    brokerGoneTimeoutSeconds: 60,
    brokerBackTimeoutSeconds: 60,
    replicationTimeoutSeconds: 60,
    preferredLeaderElection: true,
    approvalPerBroker: false,
    canaryTopic: 'ballast-canary',
    canaryIntervalMs: 20,
  }),
  kafkaClusterState: async () => ({
    clusterId: 'recorded',
    brokersOnline: [1, 2, 3],
    brokersConfigured: [1, 2, 3],
    partitions: [{ topic: 'orders', partition: 0, replicas: [1, 2, 3], isr: [1, 2, 3], minIsr: 2, leader: 1 }],
    underReplicated: 0,
    offline: 0,
    quorumLeader: 2,
  }),
  stopKafkaBroker: async () => ({ backend: 'local', action: 'processStopped', durationMs: 5, goneObserved: true }),
  waitBrokerGone: async ({ brokerId }: { brokerId: number }) => ({ brokerId, durationMs: 1 }),
  startKafkaBroker: async () => ({ backend: 'local', action: 'processStarted', durationMs: 5 }),
  waitBrokerBack: async ({ brokerId }: { brokerId: number }) => ({ brokerId, durationMs: 1 }),
  waitReplicationRestored: async ({ brokerId }: { brokerId: number }) => ({ brokerId, durationMs: 1, partitions: 1, brokerPartitions: 1 }),
  electPreferredLeaders: async () => ({ durationMs: 5, elected: 0, alreadyElected: 1 }),
  writeRollReport: async (report: { reportKey: string }) => report.reportKey,
  acquireRollLease: async () => undefined,
  releaseRollLease: async () => undefined,
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
        ...restoreActivities,
        ...rollActivities,
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

      // A restore approved by signal at the gate.
      const restoreHandle = await env.client.workflow.start<typeof restore>('restore', {
        taskQueue: `${taskQueue}-healthy`,
        workflowId: 'restore-approved',
        args: [{ incidentStartedAt: '2026-11-22T03:00:00.000Z' }],
      });
      while ((await restoreHandle.query(restoreStatusQuery)).phase !== 'awaiting approval') await new Promise((r) => setTimeout(r, 50));
      await restoreHandle.signal(approveSignal, { plan: `sha256:${'1'.repeat(64)}`, by: 'bob', reason: 'recorded' });
      await restoreHandle.result();
      const drillHandle = await env.client.workflow.start<typeof drDrill>('drDrill', {
        taskQueue: `${taskQueue}-healthy`,
        workflowId: 'drDrill-preapproved',
        args: [{}],
      });
      await drillHandle.result();
      const rollHandle = await env.client.workflow.start<typeof kafkaRollingRestart>('kafkaRollingRestart', {
        taskQueue: `${taskQueue}-healthy`,
        workflowId: 'kafkaRollingRestart-all',
        args: [{ canary: false }],
      });
      await rollHandle.result();
      for (const h of [restoreHandle, drillHandle, rollHandle]) {
        const out = path.join(historiesDir, `${h.workflowId}.json`);
        writeFileSync(out, `${historyToJSON(await h.fetchHistory())}\n`);
        console.log(`recorded ${out}`);
      }
    });
  } finally {
    await env.teardown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
