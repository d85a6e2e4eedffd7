import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DeleteObjectsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Client, Connection, WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import { sideNames } from '../../activities/clickhouse/sideTables';
import { quoteIdentifier } from '../../activities/clickhouse/sql';
import { listBucket } from '../../activities/objectStore/backup';
import { tableChecksums, tableRowCounts } from '../../activities/postgres/tables';
import { createConnections, type Connections } from '../../workers/connections';
import type { LoadedConfig } from '../../workers/config';
import { temporalConnectionOptions } from '../../workers/temporal';
import { approveSignal, approveUpdate, rejectSignal } from '../../workflows/approval';
import { drillStatusQuery, type drDrill } from '../../workflows/drDrill';
import type { platformBackup } from '../../workflows/platformBackup';
import { restoreStatusQuery, type restore } from '../../workflows/restore';
import type { RestoreReport } from '../../contracts/restoreTypes';
import { listAllKeys, objectBytes } from '../helpers/backupBucket';
import { createApprovers, type Approvers } from '../../localStack/approvers';
import { eventually } from '../helpers/stackWorker';
import { spawnWorker, writeTestConfig, type WorkerProcess } from '../helpers/workerProcess';

// Enough rows that pg_restore is still loading when the worker is killed.
const BULK_ROWS = 1_500_000;

interface PlatformState {
  pgRows: Record<string, number>;
  pgSums: Record<string, string>;
  chPartitions: Record<string, number>;
  ordersMessages: number;
  billingOffsets: Record<string, string>;
  objects: Record<string, string>;
}

describe('restore and drDrill on the real stack', () => {
  let loaded: LoadedConfig;
  let connections: Connections;
  let s3: S3Client;
  let client: Client;
  let connection: Connection;
  let worker: WorkerProcess | undefined;
  let backupId: string;
  let before_: PlatformState;
  // alice starts the runs (Temporal records her as requester); bob approves; mallory is not listed.
  let approvers: Approvers;
  const approvalsConfig = (timing = { reminderAfterMinutes: 10, timeoutMinutes: 20 }) => ({ allowedSignersFile: approvers.allowedSignersFile, approvers: ['alice', 'bob'], fourEyes: true, ...timing });
  const dataBucket = 'platform-data';

  const pgQuery = async <T extends pg.QueryResultRow>(database: string, sql: string, params: unknown[] = []) => {
    const db = new pg.Client(connections.postgres(database));
    await db.connect();
    try {
      return (await db.query<T>(sql, params)).rows;
    } finally {
      await db.end();
    }
  };
  const chRows = async <T>(query: string): Promise<T[]> => {
    const ch = connections.clickhouse();
    try {
      return await (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
    } finally {
      await ch.close();
    }
  };
  const databases = async () => (await pgQuery<{ datname: string }>('postgres', 'SELECT datname FROM pg_database')).map((r) => r.datname).sort();

  async function platformState(): Promise<PlatformState> {
    const db = new pg.Client(connections.postgres('shop'));
    await db.connect();
    let pgRows: Record<string, number>;
    let pgSums: Record<string, string>;
    try {
      pgRows = await tableRowCounts(db);
      pgSums = await tableChecksums(db, Object.keys(pgRows));
    } finally {
      await db.end();
    }
    const chPartitions = Object.fromEntries(
      (await chRows<{ p: string; n: string }>(`SELECT partition_id AS p, toString(sum(rows)) AS n FROM system.parts WHERE database = 'analytics' AND table = 'events' AND active GROUP BY p ORDER BY p`)).map((r) => [r.p, Number(r.n)]),
    );
    const admin = connections.kafka().admin();
    await admin.connect();
    try {
      const topics = await admin.listTopics();
      const ordersMessages = topics.includes('orders') ? (await admin.fetchTopicOffsets('orders')).reduce((n, p) => n + Number(p.high) - Number(p.low), 0) : -1;
      const billing = await admin.fetchOffsets({ groupId: 'billing', topics: topics.includes('orders') ? ['orders'] : [] });
      const billingOffsets = Object.fromEntries(billing.flatMap((t) => t.partitions.map((p) => [`${t.topic}/${p.partition}`, p.offset])));
      const objects = Object.fromEntries((await listBucket(s3, dataBucket).catch(() => [])).map((o) => [o.key, o.etag]));
      return { pgRows, pgSums, chPartitions, ordersMessages, billingOffsets, objects };
    } finally {
      await admin.disconnect();
    }
  }

  async function startRestore(input: Parameters<typeof restore>[0], workflowId = `test-restore-${randomUUID()}`) {
    return client.workflow.start<typeof restore>('restore', { taskQueue: loaded.config.temporal.taskQueue, workflowId, args: [input] });
  }
  /** Waits for the gate; returns what an approver signs: the run and the plan hash. */
  const awaitingApproval = async (handle: Awaited<ReturnType<typeof startRestore>>) => {
    const status = await eventually('the restore to wait for approval', async () => {
      const s = await handle.query(restoreStatusQuery);
      return s.phase === 'awaiting approval' ? s : undefined;
    }, 90_000);
    return { workflowId: handle.workflowId, runId: (await handle.describe()).runId, planHash: status.plan!.hash };
  };
  const updateRefusal = async (handle: Awaited<ReturnType<typeof startRestore>>, answer: object) => {
    let message = '';
    await assert.rejects(handle.executeUpdate(approveUpdate, { args: [answer as never] }), (err) => {
      assert.ok(err instanceof WorkflowUpdateFailedError);
      message = String(err.cause?.message);
      return true;
    });
    return message;
  };
  const failure = (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError, String(err));
    return err.cause as ApplicationFailure;
  };

  before(async () => {
    approvers = await createApprovers(['alice', 'bob'], ['mallory']);
    loaded = writeTestConfig({ approvals: approvalsConfig() });
    connections = createConnections(loaded.config, loaded.path);
    s3 = connections.s3();
    connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
    client = new Client({ connection, namespace: loaded.config.temporal.namespace, identity: 'alice' });
    await pgQuery('shop', 'DROP TABLE IF EXISTS restore_bulk');
    await pgQuery('shop', `CREATE TABLE restore_bulk AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, ${BULK_ROWS}) g`);
    worker = await spawnWorker(loaded.path);
    const backup = await client.workflow.execute<typeof platformBackup>('platformBackup', {
      taskQueue: loaded.config.temporal.taskQueue,
      workflowId: `test-restore-backup-${randomUUID()}`,
      args: [{ retention: false }],
    });
    backupId = backup.backupId;
    before_ = await platformState();
    assert.ok(before_.ordersMessages > 0 && Object.keys(before_.billingOffsets).length > 0 && Object.keys(before_.objects).length > 0);
  });

  after(async () => {
    await worker?.stop();
    await pgQuery('shop', 'DROP TABLE IF EXISTS restore_bulk').catch(() => undefined);
    for (const name of await databases().catch(() => [])) {
      if (name.startsWith('shop_before_')) await pgQuery('postgres', `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`).catch(() => undefined);
    }
    // The restore keeps the table it replaced beside the restored one, as the database above.
    const tables = await chRows<{ name: string }>("SELECT name FROM system.tables WHERE database = 'analytics'").catch(() => []);
    for (const { name } of tables.filter((t) => t.name.startsWith('events_before_'))) {
      const ch = connections.clickhouse();
      await ch.command({ query: `DROP TABLE IF EXISTS analytics.${quoteIdentifier(name)}` }).catch(() => undefined).finally(() => ch.close());
    }
    s3?.destroy();
    await connection?.close();
  });

  it('refuses at plan, touching nothing, a backup with a corrupted object or a missing one', async () => {
    const bucket = loaded.config.objectStore.backupBucket;
    const small = await client.workflow.execute<typeof platformBackup>('platformBackup', {
      taskQueue: loaded.config.temporal.taskQueue,
      workflowId: `test-restore-small-${randomUUID()}`,
      args: [{ components: ['clickhouse'], retention: false }],
    });
    const dataKey = `backups/${small.backupId}/clickhouse/analytics/events/`;
    const manifest = JSON.parse((await objectBytes(s3, bucket, small.manifestKey)).toString()) as { pieces: { key: string; size: number }[] };
    const partition = manifest.pieces.find((p) => p.key.startsWith(dataKey) && p.key.endsWith('.native'))!;
    const original = await objectBytes(s3, bucket, partition.key);
    const corrupted = Buffer.from(original);
    corrupted[corrupted.length - 1] = corrupted.at(-1)! ^ 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: partition.key, Body: corrupted }));
    const stateBefore = await platformState();

    await assert.rejects(client.workflow.execute<typeof restore>('restore', { taskQueue: loaded.config.temporal.taskQueue, workflowId: `test-restore-corrupt-${randomUUID()}`, args: [{ backupId: small.backupId }] }), (err) => {
      const cause = failure(err);
      assert.equal(cause.type, 'BackupUnusable');
      assert.match(cause.message, /fails its checksum/);
      assert.match(cause.message, /nothing was touched/);
      return true;
    });
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: partition.key }] } }));
    await assert.rejects(client.workflow.execute<typeof restore>('restore', { taskQueue: loaded.config.temporal.taskQueue, workflowId: `test-restore-missing-${randomUUID()}`, args: [{ backupId: small.backupId }] }), (err) => {
      assert.match(failure(err).message, new RegExp(`${partition.key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is missing`));
      return true;
    });
    await assert.rejects(client.workflow.execute<typeof restore>('restore', { taskQueue: loaded.config.temporal.taskQueue, workflowId: `test-restore-none-${randomUUID()}`, args: [{ backupId: '2020-01-01T00-00-00Z-000000' }] }), (err) => {
      assert.equal(failure(err).type, 'BackupIncomplete');
      return true;
    });
    assert.deepEqual(await platformState(), stateBefore, 'nothing changed');
    // A broken backup newer than the test's main one would be what "latest" finds.
    const broken = await listAllKeys(s3, bucket, `backups/${small.backupId}/`);
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: broken.map((Key) => ({ Key })) } }));
  });

  it('refuses an unlisted key, the requester (four-eyes) and an unsigned name, then stops on a signed rejection with nothing changed', async () => {
    const databasesBefore = await databases();
    const handle = await startRestore({ backupId, verifyChecksums: false });
    const gate = await awaitingApproval(handle);
    assert.match(await updateRefusal(handle, await approvers.signAnswer('mallory', { ...gate, reason: 'trust me' })), /signing key is not in the allowed-signers file/);
    assert.match(await updateRefusal(handle, await approvers.signAnswer('alice', { ...gate, reason: 'my own' })), /alice started this run and cannot approve it too \(four-eyes\)/);
    assert.match(await updateRefusal(handle, { plan: gate.planHash, by: 'bob', reason: 'unsigned' }), /unsigned approval is refused/);
    assert.equal((await handle.query(restoreStatusQuery)).phase, 'awaiting approval', 'refused approvals leave it waiting');
    await handle.signal(rejectSignal, await approvers.signAnswer('bob', { ...gate, decision: 'reject', reason: 'wrong backup' }));
    await assert.rejects(handle.result(), (err) => {
      const cause = failure(err);
      assert.equal(cause.type, 'Rejected');
      assert.match(cause.message, /rejected by bob: wrong backup/);
      const report = cause.details?.[0] as RestoreReport;
      assert.equal(report.approval.authentication, 'ssh-signature');
      assert.equal(report.approval.refusals.length, 2, 'the two signed refusals reached the run and are in the report');
      return true;
    });
    assert.deepEqual(await platformState(), before_, 'nothing changed');
    assert.deepEqual(await databases(), databasesBefore, 'no database was created or renamed');
  });

  it('fails closed after the approval timeout, with a reminder sent and nothing changed', async () => {
    const quick = writeTestConfig({ approvals: approvalsConfig({ reminderAfterMinutes: 0.05, timeoutMinutes: 0.15 }) });
    const quickWorker = await spawnWorker(quick.path);
    try {
      const handle = await client.workflow.start<typeof restore>('restore', {
        taskQueue: quick.config.temporal.taskQueue,
        workflowId: `test-restore-timeout-${randomUUID()}`,
        args: [{ backupId, verifyChecksums: false }],
      });
      await assert.rejects(handle.result(), (err) => {
        const cause = failure(err);
        assert.equal(cause.type, 'ApprovalTimedOut');
        const report = cause.details?.[0] as RestoreReport;
        assert.equal(report.approval.outcome, 'timed out');
        assert.equal(report.approval.remindersSent, 1);
        assert.ok(report.approval.waitedMs >= 9_000, `waited ${report.approval.waitedMs} ms`);
        return true;
      });
      assert.match(quickWorker.output(), /REMINDER: approval needed/);
    } finally {
      await quickWorker.stop();
    }
    assert.deepEqual(await platformState(), before_, 'nothing changed');
  });

  it('restores a destroyed platform after approval, surviving a worker killed mid pg_restore, and everything equals what was backed up', async () => {
    const incidentStartedAt = new Date();
    // Destroy: drop the database, truncate the table, delete the topic and the group, empty the bucket.
    await pgQuery('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'shop'");
    await pgQuery('postgres', 'DROP DATABASE shop');
    const ch = connections.clickhouse();
    await ch.command({ query: 'TRUNCATE TABLE analytics.events' }).finally(() => ch.close());
    const admin = connections.kafka().admin();
    await admin.connect();
    await admin.deleteGroups(['billing']).catch(() => undefined);
    await admin.deleteTopics({ topics: ['orders'], timeout: 30_000 });
    await admin.disconnect();
    const keys = (await listBucket(s3, dataBucket)).map((o) => ({ Key: o.key }));
    await s3.send(new DeleteObjectsCommand({ Bucket: dataBucket, Delete: { Objects: keys } }));

    const handle = await startRestore({ backupId, incidentStartedAt: incidentStartedAt.toISOString() });
    const gate = await awaitingApproval(handle);
    await handle.signal(approveSignal, await approvers.signAnswer('bob', { ...gate, reason: 'incident 42: platform lost' }));
    await eventually('pg_restore to be loading', async () => {
      const rows = await pgQuery<{ n: string }>('postgres', "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'shop__ballast_loading' AND state = 'active'");
      return Number(rows[0]!.n) > 0 ? true : undefined;
    }, 120_000, 100);
    await worker?.kill();
    worker = await spawnWorker(loaded.path);

    const report = await handle.result();
    assert.equal(report.verified, true);
    assert.equal(report.approval.outcome, 'approved');
    assert.equal(report.approval.by, 'bob');
    assert.equal(report.approval.keyFingerprint, await approvers.fingerprint('bob'));
    assert.equal(report.requestedBy, 'alice');
    assert.equal(report.planHash, gate.planHash);
    const sinceIncident = (Date.now() - incidentStartedAt.getTime()) / 60_000;
    assert.ok(report.rto.measuredMinutes > 0 && report.rto.measuredMinutes <= sinceIncident + 0.01, `RTO ${report.rto.measuredMinutes} min, ${sinceIncident} min since the incident`);
    assert.equal(report.rto.targetMinutes, loaded.config.restore.rtoTargetMinutes);
    assert.equal(report.rto.met, true);
    const backupAge = (incidentStartedAt.getTime() - Date.parse(report.consistencyPoint)) / 60_000;
    assert.ok(Math.abs(report.rpo.measuredMinutes - backupAge) < 0.02, `RPO ${report.rpo.measuredMinutes} min, backup ${backupAge} min before the incident`);
    assert.equal(report.verification.length, 4, 'postgres, clickhouse, kafka and the bucket were verified');
    assert.ok(report.verification.every((v) => v.ok));
    assert.ok(report.phaseDurationsMs['awaiting approval']! > 0, 'time waiting for approval is recorded');
    const after_ = await platformState();
    assert.deepEqual(after_.pgRows, before_.pgRows);
    assert.deepEqual(after_.pgSums, before_.pgSums);
    assert.deepEqual(after_.chPartitions, before_.chPartitions);
    // The truncated ClickHouse table was replaced, not dropped: kept aside, as empty as it was left.
    const aside = sideNames('events', handle.workflowId).aside;
    assert.ok(
      report.plan.some((a) => a.action === 'replace table' && a.target === 'analytics.events' && a.detail.startsWith(`kept aside as analytics.${aside} (0 rows in 0 partition(s) now)`)),
      JSON.stringify(report.plan),
    );
    assert.deepEqual(await chRows<{ n: string }>(`SELECT toString(count()) AS n FROM analytics.${quoteIdentifier(aside)}`), [{ n: '0' }]);
    assert.equal(after_.ordersMessages, before_.ordersMessages);
    assert.deepEqual(after_.billingOffsets, before_.billingOffsets);
    assert.deepEqual(after_.objects, before_.objects);
    const stored = JSON.parse((await objectBytes(s3, loaded.config.objectStore.backupBucket, report.reportKey)).toString()) as RestoreReport;
    assert.equal(stored.rto.measuredMinutes, report.rto.measuredMinutes);
  });

  it('runs a drill into scratch targets once its plan is approved, reports RTO and RPO, and leaves no scratch target behind', async () => {
    const handle = await client.workflow.start<typeof drDrill>('drDrill', {
      taskQueue: loaded.config.temporal.taskQueue,
      workflowId: `test-drill-${randomUUID()}`,
      args: [{}],
    });
    const status = await eventually('the drill to wait for approval', async () => {
      const s = await handle.query(drillStatusQuery);
      return s.phase === 'awaiting approval' ? s : undefined;
    }, 90_000);
    assert.ok(status.plan!.actions.every((a) => /_drill|-drill/.test(a)), status.plan!.actions.join('; '));
    const answer = await approvers.signAnswer('bob', { workflowId: handle.workflowId, runId: (await handle.describe()).runId, planHash: status.plan!.hash, reason: 'monthly drill' });
    await handle.executeUpdate(approveUpdate, { args: [answer] });
    const result = await handle.result();
    assert.equal(result.report.verified, true, 'verified');
    assert.equal(result.report.kind, 'drill');
    assert.equal(result.report.approval.outcome, 'approved');
    assert.equal(result.report.approval.by, 'bob');
    assert.equal(result.report.approval.via, 'parent drill');
    assert.ok(result.report.rto.measuredMinutes > 0, `RTO ${result.report.rto.measuredMinutes}`);
    assert.ok(result.report.rpo.measuredMinutes > 0, `RPO ${result.report.rpo.measuredMinutes}`);
    assert.deepEqual(result.teardown.failed, [], 'teardown failures');
    assert.equal(result.teardown.removed.length, 4, result.teardown.removed.join(', '));
    assert.ok(result.rtoTrend.some((t) => t.startedAt === result.report.startedAt), 'this drill is in the RTO trend');
    assert.ok(!(await databases()).includes('shop_drill'), 'shop_drill is gone');
    assert.equal((await chRows<{ n: string }>("SELECT toString(count()) AS n FROM system.databases WHERE name = 'analytics_drill'"))[0]!.n, '0', 'analytics_drill is gone');
    const admin = connections.kafka().admin();
    await admin.connect();
    try {
      assert.deepEqual((await admin.listTopics()).filter((t) => t.endsWith('_drill')), [], 'no _drill topic is left');
    } finally {
      await admin.disconnect();
    }
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'platform-data-drill', Key: 'x', Body: 'x' })), 'the scratch bucket is gone');
    assert.deepEqual(await platformState(), before_, 'production untouched by the drill');
  });
});
