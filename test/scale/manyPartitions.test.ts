import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DeleteObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { writeDerivedConfig } from '../../localStack/derivedConfig';
import { quoteIdentifier } from '../../activities/clickhouse/sql';
import { createConnections, type Connections } from '../../workers/connections';
import { temporalConnectionOptions } from '../../workers/temporal';
import { approveUpdate } from '../../workflows/approval';
import type { platformBackup } from '../../workflows/platformBackup';
import { restoreStatusQuery, type restore } from '../../workflows/restore';
import { listAllKeys, readManifest } from '../helpers/backupBucket';
import { eventually, startStackWorker, type StackWorker } from '../helpers/stackWorker';

// A table of 10,000 partitions backs up and restores: its pieces (one per partition) travel in
// the backup bucket, never in workflow history, where one payload of them would pass Temporal's
// 2 MB limit at about 2,000 partitions.
const PARTITIONS = 10_000;
const ROWS_PER_PARTITION = 2;
// Newer servers refuse an insert that touches more than 100 partitions by default.
const PARTITIONS_PER_INSERT = 100;
// Far below Temporal's 2 MB: what a workflow carries stays small however many partitions.
const MAX_EVENT_BYTES = 256 * 1024;

describe(`a ClickHouse table of ${PARTITIONS} partitions (real stack)`, () => {
  const id = randomUUID().replace(/-/g, '').slice(0, 8);
  const database = `many_parts_${id}`;
  const copy = `${database}_copy`;
  const table = 'wide';
  let stack: StackWorker;
  let connections: Connections;
  let ch: ClickHouseClient;
  let s3: S3Client;
  let client: Client;
  let connection: Connection;
  let backupId: string | undefined;
  let backupBucket: string;

  const one = async <T>(query: string): Promise<T> => {
    const [row] = await (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
    return row!;
  };
  const shape = (db: string) =>
    one<{ rows: string; partitions: string; total: string }>(
      `SELECT count() AS rows, uniqExact(p) AS partitions, sum(v) AS total FROM ${quoteIdentifier(db)}.${quoteIdentifier(table)}`,
    );

  /**
   * Activities of the run that needed more than one attempt, with why the last one before failed
   * (Temporal records a retried attempt only in the attempt number and last failure of the next).
   */
  async function retried(handle: WorkflowHandle): Promise<string[]> {
    const history = await handle.fetchHistory();
    return (history.events ?? []).flatMap((e) => {
      const started = e.activityTaskStartedEventAttributes;
      return started && (started.attempt ?? 1) > 1 ? [`attempt ${started.attempt}: ${started.lastFailure?.message ?? 'unknown'}`] : [];
    });
  }

  /** The largest event of the run's history, encoded as Temporal stores it. */
  async function largestEvent(handle: WorkflowHandle): Promise<{ bytes: number; type: string }> {
    const history = await handle.fetchHistory();
    let largest = { bytes: 0, type: '' };
    for (const event of history.events ?? []) {
      const bytes = temporal.api.history.v1.HistoryEvent.encode(temporal.api.history.v1.HistoryEvent.fromObject(event)).finish().length;
      if (bytes > largest.bytes) largest = { bytes, type: temporal.api.enums.v1.EventType[event.eventType ?? 0] ?? String(event.eventType) };
    }
    return largest;
  }

  before(async () => {
    const loaded = writeDerivedConfig(`many-partitions-${id}`, (raw) => {
      raw.clickhouse = { ...raw.clickhouse!, databases: [...(raw.clickhouse?.databases ?? []), { name: database, tables: [table] }] };
    });
    backupBucket = loaded.config.objectStore.backupBucket;
    connections = createConnections(loaded.config, loaded.path);
    ch = connections.clickhouse(600_000);
    s3 = connections.s3();
    await ch.command({ query: `CREATE DATABASE ${quoteIdentifier(database)}` });
    await ch.command({
      query: `CREATE TABLE ${quoteIdentifier(database)}.${quoteIdentifier(table)} (p UInt16, v UInt64) ENGINE = MergeTree() PARTITION BY p ORDER BY v`,
    });
    for (let from = 0; from < PARTITIONS; from += PARTITIONS_PER_INSERT) {
      await ch.command({
        query:
          `INSERT INTO ${quoteIdentifier(database)}.${quoteIdentifier(table)} ` +
          `SELECT ${from} + intDiv(number, ${ROWS_PER_PARTITION}) AS p, number + ${from * ROWS_PER_PARTITION} AS v FROM system.numbers LIMIT ${PARTITIONS_PER_INSERT * ROWS_PER_PARTITION}`,
      });
    }
    // Every step with a 3 s heartbeat timeout: one that held the worker's event loop that long over
    // 10,000 pieces (a synchronous pass over a manifest, a plan or a listing) would time out.
    stack = await startStackWorker(loaded, { shrunkTimeouts: true });
    connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
    client = new Client({ connection, namespace: loaded.config.temporal.namespace, identity: 'alice' });
  });

  after(async () => {
    await stack?.close();
    await connection?.close();
    for (const db of [database, copy]) await ch?.command({ query: `DROP DATABASE IF EXISTS ${quoteIdentifier(db)}` });
    await ch?.close();
    if (backupId && s3) {
      const keys = await listAllKeys(s3, backupBucket, `backups/${backupId}/`);
      for (let i = 0; i < keys.length; i += 1000) {
        await s3.send(new DeleteObjectsCommand({ Bucket: backupBucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) } }));
      }
    }
    s3?.destroy();
  });

  it('backs up, with every piece in the manifest and no large payload in the workflow history', async () => {
    assert.deepEqual(await shape(database), { rows: String(PARTITIONS * ROWS_PER_PARTITION), partitions: String(PARTITIONS), total: String(((PARTITIONS * ROWS_PER_PARTITION - 1) * PARTITIONS * ROWS_PER_PARTITION) / 2) });
    const started = Date.now();
    const handle = await client.workflow.start<typeof platformBackup>('platformBackup', {
      taskQueue: stack.taskQueue,
      workflowId: `many-partitions-backup-${id}`,
      args: [{ components: ['clickhouse'], clickhouseTables: [`${database}.${table}`], retention: false }],
    });
    const result = await handle.result();
    backupId = result.backupId;
    console.log(`backup of ${PARTITIONS} partitions: ${((Date.now() - started) / 1000).toFixed(1)} s (phases ${JSON.stringify(result.phaseDurationsMs)})`);

    const manifest = await readManifest(s3, backupBucket, result.backupId);
    const data = manifest.pieces.filter((p) => p.name.startsWith(`${database}.${table}/`) && !p.name.endsWith('/schema'));
    assert.equal(data.length, PARTITIONS, 'one piece per partition');
    assert.equal(data.reduce((n, p) => n + (p.rows ?? 0), 0), PARTITIONS * ROWS_PER_PARTITION);
    assert.equal(result.totals.pieces, PARTITIONS + 1, 'the partitions and the schema');

    const largest = await largestEvent(handle);
    console.log(`backup: largest history event ${largest.bytes} bytes (${largest.type})`);
    assert.deepEqual(await retried(handle), [], 'no step missed its 3 s heartbeat timeout (or failed otherwise)');
    assert.ok(largest.bytes < MAX_EVENT_BYTES, `an event of ${largest.bytes} bytes (${largest.type})`);
  });

  it('restores beside the original, every partition and row, with no large payload in the workflow history', async () => {
    assert.ok(backupId, 'the backup above ran');
    const started = Date.now();
    const handle = await client.workflow.start<typeof restore>('restore', {
      taskQueue: stack.taskQueue,
      workflowId: `many-partitions-restore-${id}`,
      args: [{ backupId, components: ['clickhouse'], targets: { clickhouse: { [database]: copy } } }],
    });
    const plan = await eventually(
      'the restore to wait for approval',
      async () => {
        const status = await handle.query(restoreStatusQuery);
        assert.notEqual(status.phase, 'refused');
        return status.phase === 'awaiting approval' ? status.plan : undefined;
      },
      600_000,
    );
    const planned = Date.now();
    await handle.executeUpdate(approveUpdate, { args: [{ plan: plan.hash, by: 'bob', reason: `${PARTITIONS} partitions` }] });
    const report = await handle.result();
    const finished = Date.now();
    console.log(`restore of ${PARTITIONS} partitions: plan ${((planned - started) / 1000).toFixed(1)} s, then restore and verify ${((finished - planned) / 1000).toFixed(1)} s (phases ${JSON.stringify(report.phaseDurationsMs)})`);

    assert.equal(report.verified, true);
    assert.deepEqual(await shape(copy), await shape(database));
    const checks = report.verification.flatMap((v) => v.checks);
    assert.ok(checks.length < 100, `the report carries ${checks.length} checks, not one per partition`);
    const stored = report.verification.find((v) => v.allChecksKey);
    assert.ok(stored, 'the per-partition checks are stored in the bucket');

    const largest = await largestEvent(handle);
    console.log(`restore: largest history event ${largest.bytes} bytes (${largest.type})`);
    assert.deepEqual(await retried(handle), [], 'no step missed its 3 s heartbeat timeout (or failed otherwise)');
    assert.ok(largest.bytes < MAX_EVENT_BYTES, `an event of ${largest.bytes} bytes (${largest.type})`);
  });
});
