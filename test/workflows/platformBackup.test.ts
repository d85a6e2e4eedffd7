import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type { BackupPlan, BackupPlanRequest, Component, ManifestRequest, ManifestSummary, StoredPieces } from '../../contracts/backupTypes';
import type { PlatformBackupInput, PlatformBackupResult } from '../../workflows/platformBackup';
import type { SystemHealth, SystemName } from '../../contracts/healthTypes';
import { createTestEnvironment, workflowBundle } from '../helpers/workflowEnv';
import { lacksOf } from '../../activities/backup/completeness';

// Fake activities: the point here is the workflow's ordering and bookkeeping (pre-flight before
// anything, bounded concurrency, manifest last, skips recorded, failures surfaced), not the
// systems. The integration tests run the real activities against the real stack.
type FakeActivities = Pick<
  Activities,
  | 'checkPostgres'
  | 'checkClickHouse'
  | 'checkKafka'
  | 'checkObjectStore'
  | 'planBackup'
  | 'backupPostgresDatabase'
  | 'backupClickHouseTable'
  | 'backupKafkaMetadata'
  | 'backupKafkaTopicData'
  | 'backupBucket'
  | 'writeManifest'
  | 'applyRetention'
>;

interface Journal {
  events: string[];
  inFlight: number;
  maxInFlight: number;
  manifest?: ManifestRequest;
  plan?: BackupPlanRequest;
}

function fakeActivities(journal: Journal, overrides: Partial<FakeActivities> = {}): FakeActivities {
  const check = (system: SystemName) => async (): Promise<SystemHealth> => {
    journal.events.push(`check ${system}`);
    return { system, healthy: true, checkedAt: new Date().toISOString(), durationMs: 1, figures: { version: `${system}-1` } };
  };
  const piece =
    (component: Component, name: (req: Record<string, string>) => string) =>
    async (req: { backupId: string }): Promise<StoredPieces> => {
      const label = name(req as unknown as Record<string, string>);
      journal.events.push(`start ${label}`);
      journal.inFlight++;
      journal.maxInFlight = Math.max(journal.maxInFlight, journal.inFlight);
      await new Promise((resolve) => setTimeout(resolve, 50));
      journal.inFlight--;
      journal.events.push(`end ${label}`);
      return { component, unit: label, key: `backups/${req.backupId}/piece-lists/${label}.json`, sha256: 'ab', pieces: 1, bytes: 100, rows: 10, messages: 0, resumed: false };
    };
  return {
    checkPostgres: check('postgres'),
    checkClickHouse: check('clickhouse'),
    checkKafka: check('kafka'),
    checkObjectStore: check('objectStore'),
    planBackup: async (request): Promise<BackupPlan> => {
      journal.events.push('plan');
      journal.plan = request;
      return {
        backupBucket: 'fake-backups',
        concurrency: 2,
        environment: 'test',
        narrowed: request.postgresDatabases ? [{ component: 'postgres', reason: 'input.postgresDatabases left out billing' }] : [],
        tasks: [
          ...(request.components.includes('postgres')
            ? [
                { component: 'postgres' as const, kind: 'postgresDatabase' as const, database: 'shop' },
                { component: 'postgres' as const, kind: 'postgresDatabase' as const, database: 'billing' },
              ]
            : []),
          ...(request.components.includes('clickhouse')
            ? [{ component: 'clickhouse' as const, kind: 'clickhouseTable' as const, database: 'analytics', table: 'events' }]
            : []),
          ...(request.components.includes('kafka')
            ? [
                { component: 'kafka' as const, kind: 'kafkaMetadata' as const },
                { component: 'kafka' as const, kind: 'kafkaTopic' as const, topic: 'orders' },
              ]
            : []),
          ...(request.components.includes('objectStore') ? [{ component: 'objectStore' as const, kind: 'bucket' as const, bucket: 'data' }] : []),
        ],
      };
    },
    backupPostgresDatabase: piece('postgres', (r) => `postgres ${r.database}`),
    backupClickHouseTable: piece('clickhouse', (r) => `clickhouse ${r.database}.${r.table}`),
    backupKafkaMetadata: piece('kafka', () => 'kafka metadata'),
    backupKafkaTopicData: piece('kafka', (r) => `kafka ${r.topic}`),
    backupBucket: piece('objectStore', (r) => `bucket ${r.bucket}`),
    writeManifest: async (request): Promise<ManifestSummary> => {
      journal.events.push('manifest');
      journal.manifest = request;
      const bytes = request.pieceLists.length * 100;
      const lacks = lacksOf(request.skipped, request.narrowed);
      return {
        formatVersion: 1,
        backupId: request.backupId,
        environment: request.environment,
        workflowId: request.workflowId,
        runId: request.runId,
        startedAt: request.startedAt,
        finishedAt: new Date().toISOString(),
        consistencyPoint: request.startedAt,
        serverVersions: request.serverVersions,
        components: [],
        skipped: request.skipped,
        totals: { pieces: request.pieceLists.length, bytes, rows: 0, messages: 0 },
        complete: lacks.length === 0,
        lacks,
      };
    },
    applyRetention: async () => {
      journal.events.push('retention');
      return { policy: { daily: 1, weekly: 0, monthly: 0, partial: 0, incompleteGraceHours: 1 }, kept: [], deleted: [], protectedObjects: 0 };
    },
    ...overrides,
  };
}

describe('platformBackup workflow (fake activities)', () => {
  let env: TestWorkflowEnvironment;

  before(async () => {
    env = await createTestEnvironment();
  });
  after(async () => {
    await env?.teardown();
  });

  async function run(input: PlatformBackupInput, activities: FakeActivities): Promise<PlatformBackupResult> {
    const taskQueue = `test-${randomUUID()}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
    return worker.runUntil(
      env.client.workflow.execute('platformBackup', { taskQueue, workflowId: `backup-${randomUUID()}`, args: [input] }) as Promise<PlatformBackupResult>,
    );
  }

  it('checks health and plans side by side, runs the pieces at most plan.concurrency at once, then writes the manifest, then retention', async () => {
    const journal: Journal = { events: [], inFlight: 0, maxInFlight: 0 };
    const result = await run({}, fakeActivities(journal));

    const firstPiece = journal.events.findIndex((e) => e.startsWith('start '));
    const plan = journal.events.indexOf('plan');
    const checks = journal.events.filter((e) => e.startsWith('check ')).map((e) => journal.events.indexOf(e));
    assert.equal(checks.length, 4, 'every backed-up system and the backup bucket are checked');
    assert.ok(Math.max(...checks, plan) < firstPiece, journal.events.join(' | '));
    assert.equal(journal.maxInFlight, 2, 'six pieces, two at a time');
    const manifest = journal.events.indexOf('manifest');
    assert.equal(manifest, journal.events.length - 2, 'the manifest is written after every piece');
    assert.equal(journal.events.at(-1), 'retention');
    assert.deepEqual(
      journal.manifest!.pieceLists.map((l) => l.key.replace(/^backups\/[^/]+\//, '')),
      ['postgres shop', 'postgres billing', 'clickhouse analytics.events', 'kafka metadata', 'kafka orders', 'bucket data'].map((unit) => `piece-lists/${unit}.json`),
      'the manifest is given every step\'s piece list, by reference, in plan order',
    );
    assert.equal(result.totals.pieces, 6);
    assert.equal(result.backupId, journal.manifest!.backupId);
    assert.match(result.backupId, /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-[0-9a-f]{6,}$/);
    assert.deepEqual(journal.manifest!.serverVersions, { postgres: 'postgres-1', clickhouse: 'clickhouse-1', kafka: 'kafka-1', objectStore: 'objectStore-1' });
    assert.equal(result.complete, true);
    assert.deepEqual(result.lacks, []);
  });

  it('reports a backup partial, with what it lacks, when a component is skipped or narrowed by the input', async () => {
    const journal: Journal = { events: [], inFlight: 0, maxInFlight: 0 };
    const result = await run({ skip: { kafka: 'cluster under maintenance' }, postgresDatabases: ['shop'], retention: false }, fakeActivities(journal));
    assert.deepEqual(journal.manifest!.narrowed, [{ component: 'postgres', reason: 'input.postgresDatabases left out billing' }], 'the plan\'s narrowing reaches the manifest');
    assert.equal(result.complete, false);
    assert.deepEqual(result.lacks, [
      { component: 'kafka', reason: 'cluster under maintenance' },
      { component: 'postgres', reason: 'input.postgresDatabases left out billing' },
    ]);
  });

  it('does not check or back up a skipped component, and records why in the manifest', async () => {
    const journal: Journal = { events: [], inFlight: 0, maxInFlight: 0 };
    const result = await run({ skip: { kafka: 'cluster under maintenance' }, retention: false }, fakeActivities(journal));
    assert.ok(!journal.events.includes('check kafka'));
    assert.ok(!journal.events.some((e) => e.startsWith('start kafka')));
    assert.ok(!journal.events.includes('retention'));
    assert.deepEqual(journal.manifest!.skipped, [{ component: 'kafka', reason: 'cluster under maintenance' }]);
    assert.deepEqual(result.skipped, journal.manifest!.skipped);
    assert.deepEqual(journal.plan!.components, ['postgres', 'clickhouse', 'objectStore']);
  });

  it('records components left out of input.components as skipped, and checks only what it backs up', async () => {
    const journal: Journal = { events: [], inFlight: 0, maxInFlight: 0 };
    await run({ components: ['postgres'], retention: false }, fakeActivities(journal));
    assert.deepEqual(journal.events.filter((e) => e.startsWith('check ')).sort(), ['check objectStore', 'check postgres']);
    assert.deepEqual(
      journal.manifest!.skipped.map((s) => s.component),
      ['clickhouse', 'kafka', 'objectStore'],
    );
    assert.ok(journal.manifest!.skipped.every((s) => s.reason === 'not requested in input.components'));
  });

  it('fails the pre-flight with the unhealthy system named, before writing anything', async () => {
    const journal: Journal = { events: [], inFlight: 0, maxInFlight: 0 };
    const activities = fakeActivities(journal, {
      checkClickHouse: async () => ({ system: 'clickhouse', healthy: false, checkedAt: new Date().toISOString(), durationMs: 1, figures: {}, error: 'connect ECONNREFUSED 127.0.0.1:18123' }),
    });
    await assert.rejects(run({}, activities), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.equal((err.cause as ApplicationFailure).type, 'PreflightFailed');
      assert.match(String(err.cause?.message), /pre-flight failed, nothing was backed up: clickhouse: UNHEALTHY: connect ECONNREFUSED/);
      assert.match(String(err.cause?.message), /input\.skip/);
      return true;
    });
    // The plan may have run beside the checks: it only reads.
    assert.ok(!journal.events.some((e) => e.startsWith('start ') || e === 'manifest'));
  });

  it("surfaces the plan's non-retryable refusal as the workflow's own error, and runs no piece", async () => {
    const journal: Journal = { events: [], inFlight: 0, maxInFlight: 0 };
    const activities = fakeActivities(journal, {
      planBackup: async () => {
        journal.events.push('plan');
        throw ApplicationFailure.nonRetryable('input.postgresDatabases: database "nope" does not exist', 'InvalidInput');
      },
    });
    await assert.rejects(run({ postgresDatabases: ['nope'] }, activities), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.equal((err.cause as ApplicationFailure).type, 'InvalidInput');
      assert.match(String(err.cause?.message), /input\.postgresDatabases: database "nope" does not exist/);
      return true;
    });
    assert.equal(journal.events.filter((e) => e === 'plan').length, 1, 'a non-retryable refusal is not retried');
    assert.ok(!journal.events.some((e) => e.startsWith('start ') || e === 'manifest'));
  });

  it('refuses, before any check, input that skips everything or names an unknown field', async () => {
    const journal: Journal = { events: [], inFlight: 0, maxInFlight: 0 };
    await assert.rejects(run({ components: ['kafka'], skip: { kafka: 'down' } }, fakeActivities(journal)), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(String(err.cause?.message), /every component is skipped/);
      return true;
    });
    await assert.rejects(run({ component: ['kafka'] } as PlatformBackupInput, fakeActivities(journal)), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(String(err.cause?.message), /component/);
      assert.equal((err.cause as ApplicationFailure).nonRetryable, true);
      return true;
    });
    assert.deepEqual(journal.events, []);
  });

  it('clickhousePartitions: the plan gets them, each table piece backs up only its partitions, and the backup is partial', async () => {
    const journal: Journal = { events: [], inFlight: 0, maxInFlight: 0 };
    const asked: unknown[] = [];
    const base = fakeActivities(journal);
    const activities = fakeActivities(journal, {
      planBackup: async (request) => {
        const plan = await base.planBackup(request);
        const partitions = request.clickhousePartitions?.['analytics.events'];
        return {
          ...plan,
          tasks: plan.tasks.map((t) => (t.kind === 'clickhouseTable' && partitions ? { ...t, partitions } : t)),
          narrowed: [{ component: 'clickhouse', reason: 'input.clickhousePartitions narrowed analytics.events to partition(s) 202601, 202602' }],
        };
      },
      backupClickHouseTable: async (request) => {
        asked.push(request);
        return base.backupClickHouseTable(request);
      },
    });
    const result = await run({ components: ['clickhouse'], clickhousePartitions: { 'analytics.events': ['202601', '202602'] }, retention: false }, activities);
    assert.deepEqual(journal.plan!.clickhousePartitions, { 'analytics.events': ['202601', '202602'] });
    assert.deepEqual(asked, [{ backupId: result.backupId, database: 'analytics', table: 'events', partitions: ['202601', '202602'] }]);
    assert.deepEqual(journal.manifest!.narrowed, [{ component: 'clickhouse', reason: 'input.clickhousePartitions narrowed analytics.events to partition(s) 202601, 202602' }]);
    assert.equal(result.complete, false, 'a backup of some partitions is partial');
  });

  it('refuses, before any check, clickhousePartitions that do not name database.table and partition ids', async () => {
    const journal: Journal = { events: [], inFlight: 0, maxInFlight: 0 };
    const shapes: Record<string, string[]>[] = [{ events: ['202601'] }, { 'analytics.events': [] }, { 'analytics.events': [''] }];
    for (const clickhousePartitions of shapes) {
      await assert.rejects(run({ clickhousePartitions }, fakeActivities(journal)), (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError);
        assert.equal((err.cause as ApplicationFailure).type, 'InvalidInput');
        assert.match(String(err.cause?.message), /input\.clickhousePartitions/);
        return true;
      });
    }
    assert.deepEqual(journal.events, []);
  });
});
