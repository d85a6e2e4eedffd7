import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, DeleteBucketCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import { tableChecksums, tableRowCounts } from '../../activities/postgres/tables';
import { writeDerivedConfig } from '../../localStack/derivedConfig';
import { createConnections, type Connections } from '../../workers/connections';
import type { LoadedConfig } from '../../workers/config';
import { temporalConnectionOptions } from '../../workers/temporal';
import { rejectSignal } from '../../workflows/approval';
import type { drDrill } from '../../workflows/drDrill';
import { restoreStatusQuery, type restore } from '../../workflows/restore';
import { eventually } from '../helpers/stackWorker';
import type { platformBackup } from '../../workflows/platformBackup';
import { spawnWorker, type WorkerProcess } from '../helpers/workerProcess';

// A drill touches only what it was meant to: a database dropped from the config since the backup
// still goes to a scratch name, and scratch names someone else holds refuse the drill untouched.

const LEDGER = 'ledger_safety';

describe('restore safety on the real stack', () => {
  let withLedger: LoadedConfig;
  let withoutLedger: LoadedConfig;
  let connections: Connections;
  let s3: S3Client;
  let connection: Connection;
  let client: Client;
  const workers: WorkerProcess[] = [];

  let backupId: string;
  const config = (name: string, databases: string[], retention?: Record<string, number>) =>
    writeDerivedConfig(`safety-${name}-${randomUUID().slice(0, 8)}`, (raw) => {
      const id = randomUUID().slice(0, 8);
      raw.temporal = { ...raw.temporal, taskQueue: `ballast-safety-${name}-${id}` };
      raw.postgres = { ...raw.postgres, databases };
      raw.backup = { ...raw.backup, ...(retention ? { retention } : {}), schedule: { ...raw.backup?.schedule, enabled: false, scheduleId: `ballast-safety-backup-${id}` } };
      // The drills here start without a person: the approvals are not what these tests attack.
      raw.drill = { ...raw.drill, scratchPreApproved: true, schedule: { ...raw.drill?.schedule, enabled: false, scheduleId: `ballast-safety-drill-${id}` } };
    });
  const admin = async <T extends pg.QueryResultRow>(database: string, sql: string): Promise<T[]> => {
    const db = new pg.Client(connections.postgres(database));
    await db.connect();
    try {
      return (await db.query<T>(sql)).rows;
    } finally {
      await db.end();
    }
  };
  const databases = async () => (await admin<{ datname: string }>('postgres', 'SELECT datname FROM pg_database')).map((r) => r.datname);
  const ledgerState = async () => {
    const db = new pg.Client(connections.postgres(LEDGER));
    await db.connect();
    try {
      const rows = await tableRowCounts(db);
      return { rows, sums: await tableChecksums(db, Object.keys(rows)) };
    } finally {
      await db.end();
    }
  };
  const drill = (loaded: LoadedConfig) =>
    client.workflow.execute<typeof drDrill>('drDrill', { taskQueue: loaded.config.temporal.taskQueue, workflowId: `test-safety-drill-${randomUUID()}`, args: [{}] });

  before(async () => {
    withLedger = config('with', ['shop', LEDGER]);
    withoutLedger = config('without', ['shop']);
    connections = createConnections(withLedger.config, withLedger.path);
    s3 = connections.s3();
    connection = await Connection.connect(temporalConnectionOptions(withLedger.config, withLedger.path));
    client = new Client({ connection, namespace: withLedger.config.temporal.namespace });
    await admin('postgres', `DROP DATABASE IF EXISTS ${LEDGER}`);
    await admin('postgres', `CREATE DATABASE ${LEDGER}`);
    await admin(LEDGER, 'CREATE TABLE entries AS SELECT g AS id, md5(g::text) AS memo FROM generate_series(1, 5000) g');
    workers.push(await spawnWorker(withLedger.path), await spawnWorker(withoutLedger.path));
    // A complete backup of the platform while the config still lists the ledger.
    backupId = (await client.workflow.execute<typeof platformBackup>('platformBackup', { taskQueue: withLedger.config.temporal.taskQueue, workflowId: `test-safety-backup-${randomUUID()}`, args: [{ retention: false }] })).backupId;
  });

  after(async () => {
    for (const w of workers) await w.stop();
    await admin('postgres', `DROP DATABASE IF EXISTS ${LEDGER}`).catch(() => undefined);
    s3?.destroy();
    await connection?.close();
  });

  it('config drift: a database dropped from the config since the backup goes to its scratch name, and production keeps its content', async () => {
    const before_ = await ledgerState();
    const result = await drill(withoutLedger);
    assert.equal(result.report.verified, true);
    assert.equal(result.scratchTargets.postgres[LEDGER], `${LEDGER}_drill`, 'the unlisted database got a scratch name');
    assert.ok(result.report.steps.some((s) => s.unit === `postgres ${LEDGER} -> ${LEDGER}_drill`), result.report.steps.map((s) => s.unit).join(', '));
    assert.ok(result.teardown.removed.includes(`postgres ${LEDGER}_drill`), result.teardown.removed.join(', '));
    assert.deepEqual(result.teardown.failed, []);
    assert.deepEqual(await ledgerState(), before_, 'production ledger untouched: same rows, same content checksums');
    assert.ok(!(await databases()).includes(`${LEDGER}_drill`));
  });

  it('scratch names that already exist and are not the drill\'s refuse it at plan, and stay untouched', async () => {
    await admin('postgres', 'CREATE DATABASE shop_drill');
    await admin('shop_drill', "CREATE TABLE keep_me AS SELECT 'made by hand' AS note");
    const ch = connections.clickhouse();
    await ch.command({ query: 'CREATE DATABASE IF NOT EXISTS analytics_drill' });
    await s3.send(new CreateBucketCommand({ Bucket: 'platform-data-drill' }));
    try {
      await assert.rejects(drill(withoutLedger), (err) => {
        assert.ok(err instanceof WorkflowFailedError, String(err));
        const cause = err.cause as ApplicationFailure;
        assert.equal(cause.type, 'TargetRefused');
        assert.match(cause.message, /nothing was touched/);
        assert.match(cause.message, /shop_drill already exists and was not created by this run/);
        return true;
      });
      assert.deepEqual(await admin<{ note: string }>('shop_drill', 'SELECT note FROM keep_me'), [{ note: 'made by hand' }], 'the hand-made database is untouched');
      const chDatabases = await (await ch.query({ query: "SELECT name FROM system.databases WHERE name = 'analytics_drill'", format: 'JSONEachRow' })).json<{ name: string }>();
      assert.equal(chDatabases.length, 1, 'analytics_drill is still there');
      await s3.send(new HeadBucketCommand({ Bucket: 'platform-data-drill' }));
    } finally {
      await admin('postgres', 'DROP DATABASE IF EXISTS shop_drill');
      await ch.command({ query: 'DROP DATABASE IF EXISTS analytics_drill' });
      await ch.close();
      await s3.send(new DeleteBucketCommand({ Bucket: 'platform-data-drill' })).catch(() => undefined);
    }
  });

  it('one restore per target: a second restore into a target a waiting restore holds is refused, and the target is free once the first ends', async () => {
    const taskQueue = withLedger.config.temporal.taskQueue;
    const input = { backupId, components: ['postgres' as const], targets: { postgres: { shop: 'shop_safety_copy', [LEDGER]: `${LEDGER}_copy` } } };
    const start = () => client.workflow.start<typeof restore>('restore', { taskQueue, workflowId: `test-safety-restore-${randomUUID()}`, args: [input] });
    const waiting = async (handle: Awaited<ReturnType<typeof start>>) =>
      eventually('the restore to wait for approval', async () => {
        const s = await handle.query(restoreStatusQuery);
        return s.phase === 'awaiting approval' ? s : undefined;
      }, 90_000);
    const first = await start();
    const firstPlan = await waiting(first);
    const second = await start();
    await assert.rejects(second.result(), (err) => {
      const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
      assert.equal(cause.type, 'TargetBusy');
      assert.match(cause.message, new RegExp(`refused at plan, nothing was touched: postgres (shop_safety_copy|${LEDGER}_copy) is in use by ${first.workflowId}`));
      return true;
    });
    await first.signal(rejectSignal, { plan: firstPlan.plan!.hash, by: 'test', reason: 'only a lease test' });
    await assert.rejects(first.result(), (err) => ((err as WorkflowFailedError).cause as ApplicationFailure).type === 'Rejected');
    const third = await start();
    const thirdPlan = await waiting(third);
    await third.signal(rejectSignal, { plan: thirdPlan.plan!.hash, by: 'test', reason: 'only a lease test' });
    await assert.rejects(third.result());
    assert.ok(!(await databases()).includes('shop_safety_copy'), 'nothing was restored');
  });

  it('retention keeps a backup that a restore is reading, whatever the policy says', async () => {
    // A policy that keeps only the newest complete backup would delete the one under restore once
    // a newer complete backup exists (a partial one would not count).
    const keepOne = config('retention', ['shop', LEDGER], { daily: 1, weekly: 0, monthly: 0, partial: 0, incompleteGraceHours: 24 });
    const retentionWorker = await spawnWorker(keepOne.path);
    workers.push(retentionWorker);
    const reading = await client.workflow.start<typeof restore>('restore', {
      taskQueue: withLedger.config.temporal.taskQueue,
      workflowId: `test-safety-reader-${randomUUID()}`,
      args: [{ backupId, components: ['postgres'], targets: { postgres: { shop: 'shop_reader_copy', [LEDGER]: `${LEDGER}_reader_copy` } } }],
    });
    const status = await eventually('the restore to hold its leases and wait', async () => {
      const s = await reading.query(restoreStatusQuery);
      return s.phase === 'awaiting approval' ? s : undefined;
    }, 90_000);
    const newer = await client.workflow.execute<typeof platformBackup>('platformBackup', { taskQueue: keepOne.config.temporal.taskQueue, workflowId: `test-safety-retention-${randomUUID()}`, args: [{}] });
    const kept = newer.retention?.kept.find((k) => k.id === backupId);
    assert.ok(kept, `backup ${backupId} kept: ${JSON.stringify(newer.retention)}`);
    assert.ok(kept.reasons.some((r) => r.includes(`being read by ${reading.workflowId}`)), kept.reasons.join('; '));
    assert.ok(!newer.retention!.deleted.some((d) => d.id === backupId));
    await reading.signal(rejectSignal, { plan: status.plan!.hash, by: 'test', reason: 'only a retention test' });
    await assert.rejects(reading.result());
  });
});
