import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import pg from 'pg';
import { markerKey } from '../../activities/storage/backupObjects';
import { pieceListKey } from '../../activities/backup/pieceLists';
import { RESUME_WITHIN_MS } from '../../workflows/activityOptions';
import { createConnections, type Connections } from '../../workers/connections';
import type { LoadedConfig } from '../../workers/config';
import { temporalConnectionOptions } from '../../workers/temporal';
import { backupStatusQuery, type platformBackup } from '../../workflows/platformBackup';
import { listAllKeys, objectBytes, readManifest, sha256 } from '../helpers/backupBucket';
import { eventually } from '../helpers/stackWorker';
import { spawnWorker, writeTestConfig, type WorkerProcess } from '../helpers/workerProcess';

// Enough data that pg_dump is still streaming when the worker is killed.
const BULK_ROWS = 2_500_000;

describe('platformBackup survives a killed worker', () => {
  let loaded: LoadedConfig;
  let connections: Connections;
  let s3: S3Client;
  let client: Client;
  let connection: Connection;
  let workers: WorkerProcess[] = [];

  before(async () => {
    loaded = writeTestConfig();
    connections = createConnections(loaded.config, loaded.path);
    s3 = connections.s3();
    connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
    client = new Client({ connection, namespace: loaded.config.temporal.namespace });
    const db = new pg.Client(connections.postgres('shop'));
    await db.connect();
    try {
      await db.query('DROP TABLE IF EXISTS bulk_payload');
      await db.query(
        `CREATE TABLE bulk_payload AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS payload FROM generate_series(1, ${BULK_ROWS}) g`,
      );
    } finally {
      await db.end();
    }
  });

  after(async () => {
    await Promise.allSettled(workers.map((w) => w.stop()));
    const db = new pg.Client(connections.postgres('shop'));
    await db.connect();
    await db.query('DROP TABLE IF EXISTS bulk_payload').finally(() => db.end());
    s3?.destroy();
    // The worker created this test's own schedule at start; it must not outlive the test.
    await client?.schedule.getHandle(loaded.config.backup.schedule.scheduleId).delete().catch(() => undefined);
    await connection?.close();
  });

  it('the other of two workers completes the same run within 30 s of a SIGKILL mid-dump, with a correct manifest and no duplicate objects', async () => {
    const bucket = loaded.config.objectStore.backupBucket;
    workers = await Promise.all([spawnWorker(loaded.path), spawnWorker(loaded.path)]);
    const handle = await client.workflow.start<typeof platformBackup>('platformBackup', {
      taskQueue: loaded.config.temporal.taskQueue,
      workflowId: `test-backup-crash-${randomUUID()}`,
      args: [{ components: ['postgres'], retention: false }],
    });

    // Wait until the dump is streaming into a multipart upload, then kill the worker running it
    // outright, and start none in its place. (MinIO lists multipart uploads only for an exact
    // key, so the backup id comes first.)
    const backupId = await eventually('the backup id', async () => (await handle.query(backupStatusQuery)).backupId, 60_000);
    const dumpKey = `backups/${backupId}/postgres/shop.dump`;
    await eventually(
      'the pg_dump upload to start',
      async () => (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: dumpKey }))).Uploads?.[0],
      60_000,
      100,
    );
    // The SDK's default worker identity is "<pid>@<host>".
    const dumping = await eventually('the dump to be running on a worker', async () => {
      const { raw } = await handle.describe();
      const identity = raw.pendingActivities?.find((a) => a.activityType?.name === 'backupPostgresDatabase')?.lastWorkerIdentity;
      return workers.find((w) => identity?.startsWith(`${w.child.pid}@`));
    }, 30_000, 100);
    const killedAt = Date.now();
    await dumping.kill();
    const survivor = workers.find((w) => w !== dumping)!;
    workers = [survivor];

    const result = await handle.result();
    assert.equal(result.backupId, backupId, 'the same run completed the same backup');

    const history = await handle.fetchHistory();
    const restarted = history.events!.find((e) => e.activityTaskStartedEventAttributes && (e.activityTaskStartedEventAttributes.attempt ?? 1) > 1);
    assert.ok(restarted, 'the dump activity was cut off and started again');
    assert.ok(restarted.activityTaskStartedEventAttributes!.identity!.startsWith(`${survivor.child.pid}@`), 'on the surviving worker');
    const resumedAfterMs = tsToMs(restarted.eventTime) - killedAt;
    assert.ok(resumedAfterMs <= RESUME_WITHIN_MS, `the dump started again ${resumedAfterMs} ms after its worker was killed`);
    console.log(`the dump started again on the other worker ${resumedAfterMs} ms after its worker was killed`);

    const manifest = await readManifest(s3, bucket, result.backupId);
    const dump = manifest.pieces.find((p) => p.component === 'postgres')!;
    const bytes = await objectBytes(s3, bucket, dump.key);
    assert.equal(bytes.length, dump.size);
    assert.equal(sha256(bytes), dump.sha256);
    assert.equal((dump.details?.tableRows as Record<string, number>)['public.bulk_payload'], BULK_ROWS);

    const keys = (await listAllKeys(s3, bucket, `backups/${result.backupId}/`)).sort();
    const expected = [
      `backups/${result.backupId}/manifest.json`,
      pieceListKey(result.backupId, 'postgres shop'),
      ...manifest.pieces.flatMap((p) => [p.key, markerKey(p.key)]),
    ].sort();
    assert.deepEqual(keys, expected, 'exactly the manifest, its pieces, their markers and the step\'s piece list');
    const leftovers = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: dumpKey }));
    assert.equal(leftovers.Uploads?.length ?? 0, 0, 'no abandoned multipart upload is left');
  });
});
