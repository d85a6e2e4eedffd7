import { strict as assert } from 'node:assert';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DeleteObjectsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import { manifestKeyId, signManifest } from '../../activities/backup/manifestSignature';
import type { BackupManifest } from '../../contracts/backupTypes';
import { createConnections, type Connections } from '../../workers/connections';
import type { LoadedConfig } from '../../workers/config';
import { temporalConnectionOptions } from '../../workers/temporal';
import type { platformBackup } from '../../workflows/platformBackup';
import { restoreStatusQuery, type restore } from '../../workflows/restore';
import { listAllKeys, objectBytes } from '../helpers/backupBucket';
import { eventually } from '../helpers/stackWorker';
import { spawnWorker, writeTestConfig, type WorkerProcess } from '../helpers/workerProcess';

// Signed manifests, partial backups and the ClickHouse schema check, end to end: what a restore
// refuses at plan (before any approval is asked, with nothing touched), and what "latest" and
// retention make of a partial backup newer than a complete one.
describe('backups a restore can trust', () => {
  let loaded: LoadedConfig;
  let connections: Connections;
  let s3: S3Client;
  let bucket: string;
  let client: Client;
  let connection: Connection;
  let worker: WorkerProcess | undefined;
  let signingKey: string;
  /** Backup folders this file spoils: removed at the end, so no later "latest" stops at them. */
  const spoiled: string[] = [];

  const backup = (input: Parameters<typeof platformBackup>[0]) =>
    client.workflow.execute<typeof platformBackup>('platformBackup', {
      taskQueue: loaded.config.temporal.taskQueue,
      workflowId: `test-trust-backup-${randomUUID()}`,
      args: [input],
    });
  const startRestore = (input: Parameters<typeof restore>[0]) =>
    client.workflow.start<typeof restore>('restore', {
      taskQueue: loaded.config.temporal.taskQueue,
      workflowId: `test-trust-restore-${randomUUID()}`,
      args: [input],
    });
  /** The failure of a restore that must be refused at plan. */
  const refusal = async (input: Parameters<typeof restore>[0]): Promise<ApplicationFailure> => {
    const handle = await startRestore(input);
    try {
      await handle.result();
    } catch (err) {
      assert.ok(err instanceof WorkflowFailedError, String(err));
      return err.cause as ApplicationFailure;
    }
    assert.fail('the restore was not refused');
  };
  const manifestKey = (id: string) => `backups/${id}/manifest.json`;
  const readManifest = async (id: string) => JSON.parse((await objectBytes(s3, bucket, manifestKey(id))).toString()) as BackupManifest & Record<string, unknown>;
  const putManifest = (id: string, manifest: object) =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey(id), Body: `${JSON.stringify(manifest, null, 2)}\n`, ContentType: 'application/json' }));
  const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

  /** What a restore would change, as seen from outside. */
  async function platformState() {
    const ch = connections.clickhouse();
    try {
      const rows = await (await ch.query({ query: "SELECT toString(sum(rows)) AS n FROM system.parts WHERE database = 'analytics' AND table = 'events' AND active", format: 'JSONEachRow' })).json<{ n: string }>();
      const tables = await (await ch.query({ query: "SELECT name, engine FROM system.tables WHERE database LIKE 'analytics%' ORDER BY name", format: 'JSONEachRow' })).json();
      const db = new pg.Client(connections.postgres());
      await db.connect();
      try {
        const databases = (await db.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY datname')).rows.map((r) => r.datname);
        return { eventRows: rows[0]?.n, tables, databases };
      } finally {
        await db.end();
      }
    } finally {
      await ch.close();
    }
  }

  before(async () => {
    loaded = writeTestConfig();
    connections = createConnections(loaded.config, loaded.path);
    s3 = connections.s3();
    bucket = loaded.config.objectStore.backupBucket;
    signingKey = connections.manifestSigningKey!;
    assert.ok(signingKey, 'the local stack configures backup.manifestKey');
    connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
    client = new Client({ connection, namespace: loaded.config.temporal.namespace });
    worker = await spawnWorker(loaded.path);
  });

  after(async () => {
    await worker?.stop();
    for (const id of spoiled) {
      const keys = await listAllKeys(s3, bucket, `backups/${id}/`);
      for (let at = 0; at < keys.length; at += 1000) {
        await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(at, at + 1000).map((Key) => ({ Key })) } }));
      }
    }
    s3?.destroy();
    await client?.schedule.getHandle(loaded.config.backup.schedule.scheduleId).delete().catch(() => undefined);
    await connection?.close();
  });

  it('a partial backup newer than a complete one: "latest" still means the complete one, and retention keeps it', async () => {
    const full = await backup({ retention: false });
    assert.equal(full.complete, true);
    const fullManifest = await readManifest(full.backupId);
    assert.equal(fullManifest.complete, true);
    assert.deepEqual(fullManifest.lacks, []);
    assert.equal(fullManifest.signature?.keyId, manifestKeyId(signingKey));

    // Retention runs after this one: with the old rule it would take the day's slot from the full backup.
    const partial = await backup({ components: ['postgres'] });
    assert.equal(partial.complete, false);
    assert.deepEqual(partial.lacks.map((l) => l.component).sort(), ['clickhouse', 'kafka', 'objectStore']);
    assert.equal((await readManifest(partial.backupId)).complete, false);
    const retention = partial.retention!;
    const day = `${full.backupId.slice(0, 10)}`;
    const keptFull = retention.kept.find((k) => k.id === full.backupId);
    assert.ok(keptFull?.reasons.includes('newest complete backup') && keptFull.reasons.includes(`daily ${day}`), JSON.stringify(retention));
    assert.ok(!retention.deleted.some((d) => d.id === full.backupId));
    assert.ok(retention.kept.some((k) => k.id === partial.backupId && k.reasons.some((r) => r.startsWith('partial'))), JSON.stringify(retention));

    const handle = await startRestore({ verifyChecksums: false });
    const status = await eventually('the restore of "latest" to be planned', async () => {
      const s = await handle.query(restoreStatusQuery);
      return s.phase === 'awaiting approval' ? s : undefined;
    }, 120_000);
    assert.equal(status.backupId, full.backupId, '"latest" is the newest complete backup, not the newer partial one');
    await handle.terminate('the test only needed the plan');
  });

  it('refuses at plan, touching nothing, a tampered, unsigned, foreign-key, out-of-folder or hostile-schema backup', async () => {
    const small = await backup({ components: ['clickhouse'], retention: false });
    spoiled.push(small.backupId);
    const id = small.backupId;
    const original = await readManifest(id);
    const before_ = await platformState();
    const refused = async (what: string, manifest: object, type: string, message: RegExp) => {
      await putManifest(id, manifest);
      const cause = await refusal({ backupId: id });
      assert.equal(cause.type, type, `${what}: ${cause.message}`);
      assert.match(cause.message, message, what);
      assert.match(cause.message, /nothing was touched/i, what);
    };
    const copy = (): BackupManifest & Record<string, unknown> => structuredClone(original);
    const schemaPiece = (m: BackupManifest) => m.pieces.find((p) => p.name === 'analytics.events/schema')!;

    // One sha256 changed in the manifest, the signature left as it was.
    const tampered = copy();
    tampered.pieces.find((p) => p.key.endsWith('.native'))!.sha256 = sha256('not the partition');
    await refused('a changed sha256', tampered, 'BackupNotAuthentic', /the manifest was changed after it was signed/);

    // The signature removed: an unsigned manifest needs allowUnsignedBackup.
    const unsigned = copy();
    delete unsigned.signature;
    await refused('no signature', unsigned, 'BackupNotAuthentic', /manifest\.json is unsigned.*allowUnsignedBackup/);

    // Signed, but with a key this worker does not hold.
    await refused('another key', signManifest(copy(), randomBytes(32).toString('hex')), 'BackupNotAuthentic', /signed with another key/);

    // A piece key outside the backup's folder, even in a manifest signed with the worker's own key.
    const outside = copy();
    schemaPiece(outside).key = 'backups/2020-01-01T00-00-00Z-000000/clickhouse/analytics/events/schema.sql';
    await refused('a key outside the folder', signManifest(outside, signingKey), 'BackupNotAuthentic', /lies outside the backup's folder backups\//);

    // A saved schema with another engine, its sha256 recorded and the manifest signed: the schema
    // check, not the signature, is what stops it.
    const hostile = Buffer.from("CREATE TABLE analytics.events ( event_date Date,  user_id UInt64) ENGINE = URL('http://127.0.0.1:1/exfiltrate', CSV)");
    const schemaKey = schemaPiece(original).key;
    const savedSchema = await objectBytes(s3, bucket, schemaKey);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: schemaKey, Body: hostile }));
    const withHostile = copy();
    Object.assign(schemaPiece(withHostile), { size: hostile.length, sha256: sha256(hostile) });
    await refused('a URL engine', signManifest(withHostile, signingKey), 'UnexpectedSchema', /analytics\.events.*its engine is "URL", not of the MergeTree family/);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: schemaKey, Body: savedSchema }));

    assert.deepEqual(await platformState(), before_, 'nothing was touched');
    // The untouched backup, for contrast, plans (and waits for a person).
    await putManifest(id, original);
    const handle = await startRestore({ backupId: id, verifyChecksums: false });
    await eventually('the intact backup to be planned', async () => ((await handle.query(restoreStatusQuery)).phase === 'awaiting approval' ? true : undefined), 120_000);
    await handle.terminate('the test only needed the plan');
  });
});
