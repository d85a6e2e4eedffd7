import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { listBucket } from '../../activities/objectStore/backup';
import { findPgTool } from '../../activities/postgres/tools';
import { startService, stopService } from '../../localStack';
import { seedPlatform, SEED } from '../../scripts/seed';
import { createConnections, type Connections } from '../../workers/connections';
import type { BackupManifest } from '../../contracts/backupTypes';
import { manifestAuthenticity, manifestKeyId, signManifest } from '../../activities/backup/manifestSignature';
import { backupStatusQuery, type PlatformBackupInput, type PlatformBackupResult, type platformBackup } from '../../workflows/platformBackup';
import { headEtag, listAllKeys, objectBytes, readManifest, sha256 } from '../helpers/backupBucket';
import { startStackWorker, type StackWorker } from '../helpers/stackWorker';

const run = promisify(execFile);

describe('platformBackup on the real stack', () => {
  let stack: StackWorker;
  let connections: Connections;
  let s3: S3Client;
  let bucket: string;

  before(async () => {
    stack = await startStackWorker();
    const { config, path: configFile } = stack.loaded;
    connections = createConnections(config, configFile);
    s3 = connections.s3();
    bucket = config.objectStore.backupBucket;
    await seedPlatform(config, connections);
  });

  after(async () => {
    s3?.destroy();
    await stack?.close();
  });

  async function startBackup(input: PlatformBackupInput) {
    return stack.client.workflow.start<typeof platformBackup>('platformBackup', {
      taskQueue: stack.taskQueue,
      workflowId: `test-backup-${randomUUID()}`,
      args: [input],
    });
  }

  async function backupFolders(): Promise<string[]> {
    return (await listAllKeys(s3, bucket, 'backups/')).map((k) => k.split('/')[1]!).filter((v, i, a) => a.indexOf(v) === i);
  }

  async function failure(input: PlatformBackupInput): Promise<{ message: string; type?: string }> {
    const handle = await startBackup(input);
    try {
      await handle.result();
    } catch (err) {
      assert.ok(err instanceof WorkflowFailedError, String(err));
      const cause = err.cause as { message: string; type?: string };
      return { message: cause.message, type: cause.type };
    }
    assert.fail('the backup succeeded');
  }

  let result: PlatformBackupResult;
  let manifest: BackupManifest;

  it('backs up every component and writes a manifest that matches every object', async () => {
    const handle = await startBackup({ retention: false });
    result = await handle.result();
    manifest = await readManifest(s3, bucket, result.backupId);
    assert.match(result.backupId, /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-[0-9a-f]{6}$/);
    assert.deepEqual(manifest.skipped, []);
    assert.deepEqual(
      manifest.components.map((c) => c.component).sort(),
      ['clickhouse', 'kafka', 'objectStore', 'postgres'],
    );
    assert.ok(manifest.consistencyPoint >= manifest.startedAt && manifest.consistencyPoint <= manifest.finishedAt);
    assert.match(manifest.serverVersions.postgres ?? '', /^\d+/);
    assert.match(manifest.serverVersions.clickhouse ?? '', /^\d+/);
    assert.equal(manifest.complete, true, 'every configured component, nothing skipped');
    assert.deepEqual(manifest.lacks, []);
    assert.equal(result.complete, true);
    const key = connections.manifestSigningKey!;
    assert.equal(manifest.signature?.keyId, manifestKeyId(key));
    assert.deepEqual(manifestAuthenticity(manifest, [key]), { kind: 'signed', keyId: manifestKeyId(key) });

    for (const piece of manifest.pieces) {
      const bytes = await objectBytes(s3, bucket, piece.key);
      assert.equal(bytes.length, piece.size, `size of ${piece.key}`);
      if (piece.sha256) assert.equal(sha256(bytes), piece.sha256, `sha256 of ${piece.key}`);
    }
    const status = await handle.query(backupStatusQuery);
    assert.equal(status.phase, 'done');
    assert.equal(status.components.postgres?.done, 1);
    assert.ok((status.components.clickhouse?.rows ?? 0) > 0);
  });

  it('wrote a Postgres dump that plain pg_restore reads, with the row counts of the source', async () => {
    const piece = manifest.pieces.find((p) => p.component === 'postgres' && p.name === 'shop')!;
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'ballast-dump-')), 'shop.dump');
    writeFileSync(file, await objectBytes(s3, bucket, piece.key));
    const pgRestore = await findPgTool('pg_restore', 15);
    const { stdout } = await run(pgRestore.path, ['--list', file]);
    for (const table of ['customers', 'products', 'orders', 'order_items']) {
      assert.match(stdout, new RegExp(`TABLE DATA public ${table} `), `${table} data in the dump`);
    }
    assert.match(stdout, /SEQUENCE public invoice_number_seq/);
    const tableRows = piece.details?.tableRows as Record<string, number>;
    assert.equal(tableRows['public.customers'], SEED.customers);
    assert.equal(tableRows['public.orders'], SEED.orders);
  });

  it('recorded ClickHouse rows per partition equal to the source', async () => {
    const client = connections.clickhouse();
    try {
      const source = await (
        await client.query({
          query: "SELECT partition_id, sum(rows) AS rows FROM system.parts WHERE database = 'analytics' AND table = 'events' AND active GROUP BY partition_id",
          format: 'JSONEachRow',
        })
      ).json<{ partition_id: string; rows: string }>();
      const backedUp = manifest.pieces.filter((p) => p.component === 'clickhouse' && p.name.startsWith('analytics.events/') && !p.name.endsWith('/schema'));
      assert.equal(backedUp.length, source.length);
      for (const partition of source) {
        const piece = backedUp.find((p) => p.name === `analytics.events/${partition.partition_id}`);
        assert.equal(piece?.rows, Number(partition.rows), `rows of partition ${partition.partition_id}`);
      }
    } finally {
      await client.close();
    }
  });

  it("recorded the consumer group's real committed offsets and the topics' messages", async () => {
    const piece = manifest.pieces.find((p) => p.component === 'kafka' && p.name === 'metadata')!;
    const metadata = JSON.parse((await objectBytes(s3, bucket, piece.key)).toString()) as {
      groups: { groupId: string; offsets: { topic: string; partitions: { partition: number; offset: string }[] }[] }[];
    };
    const admin = connections.kafka().admin();
    await admin.connect();
    try {
      const real = await admin.fetchOffsets({ groupId: SEED.consumerGroup, topics: ['orders'] });
      const saved = metadata.groups.find((g) => g.groupId === SEED.consumerGroup)?.offsets.find((t) => t.topic === 'orders');
      assert.ok(saved, 'the billing group is in the metadata');
      for (const p of real[0]!.partitions) {
        assert.equal(saved.partitions.find((s) => s.partition === p.partition)?.offset, p.offset, `offset of orders-${p.partition}`);
      }
    } finally {
      await admin.disconnect();
    }
    const messages = manifest.pieces.filter((p) => p.component === 'kafka' && p.name.startsWith('orders/')).reduce((n, p) => n + (p.messages ?? 0), 0);
    assert.equal(messages, SEED.topics[0].messages);
  });

  it('copied every object of the data bucket, and references unchanged ones in the next backup', async () => {
    const dataBucket = stack.loaded.config.objectStore.buckets[0]!;
    const source = await listBucket(s3, dataBucket);
    const listingPiece = manifest.pieces.find((p) => p.component === 'objectStore')!;
    const listing = JSON.parse((await objectBytes(s3, bucket, listingPiece.key)).toString()) as {
      objects: { key: string; etag: string; storedAt: string; referencedFrom?: string }[];
    };
    assert.equal(listing.objects.length, source.length);
    for (const object of listing.objects) {
      assert.equal(await headEtag(s3, bucket, object.storedAt), object.etag, `copy of ${object.key}`);
    }

    // One changed object: the next backup copies it and references the rest.
    const changed = source[0]!.key;
    await s3.send(new PutObjectCommand({ Bucket: dataBucket, Key: changed, Body: `changed ${randomUUID()}` }));
    const next = await (await startBackup({ components: ['objectStore'], retention: false })).result();
    const nextManifest = await readManifest(s3, bucket, next.backupId);
    const nextListing = JSON.parse(
      (await objectBytes(s3, bucket, nextManifest.pieces.find((p) => p.component === 'objectStore')!.key)).toString(),
    ) as typeof listing;
    // Unchanged objects point where the previous backup kept them (which may itself be a
    // reference to an older backup), and nothing is copied for them.
    const previous = new Map(listing.objects.map((o) => [o.key, o]));
    const referenced = nextListing.objects.filter((o) => o.referencedFrom !== undefined);
    assert.equal(referenced.length, source.length - 1);
    for (const o of referenced) {
      assert.equal(o.storedAt, previous.get(o.key)?.storedAt, `${o.key} points at the same stored copy`);
      assert.ok(!o.storedAt.startsWith(`backups/${next.backupId}/`));
    }
    assert.ok(nextListing.objects.find((o) => o.key === changed)?.storedAt.startsWith(`backups/${next.backupId}/`));
    assert.equal(nextManifest.previousBackupId, result.backupId);
    assert.deepEqual(
      nextManifest.skipped.map((s) => s.component).sort(),
      ['clickhouse', 'kafka', 'postgres'],
    );
  });

  it('refuses an unknown database, table or bucket before writing anything', async () => {
    const before = await backupFolders();
    const unknownDb = await failure({ postgresDatabases: ['shop', 'nosuchdb'] });
    assert.equal(unknownDb.type, 'InvalidInput');
    assert.match(unknownDb.message, /input\.postgresDatabases\.1: "nosuchdb" is not a configured Postgres database/);
    const unknownTable = await failure({ clickhouseTables: ['analytics.nosuchtable'] });
    assert.match(unknownTable.message, /input\.clickhouseTables\.0: table "analytics\.nosuchtable" does not exist/);
    const badBucket = await failure({ buckets: ['no-such-bucket'] });
    assert.match(badBucket.message, /input\.buckets\.0: "no-such-bucket" is not a configured bucket/);
    const badShape = await failure({ components: ['postgres', 'redis' as never] });
    assert.match(badShape.message, /input\.components\.1/);
    assert.deepEqual(await backupFolders(), before, 'nothing was written to the backup bucket');
  });

  it('fails pre-flight when a component is down, and backs up the rest when it is skipped explicitly', async () => {
    await stopService('clickhouse');
    try {
      const before = await backupFolders();
      const down = await failure({ retention: false });
      assert.equal(down.type, 'PreflightFailed');
      assert.match(down.message, /clickhouse: UNHEALTHY/);
      assert.deepEqual(await backupFolders(), before, 'nothing was written');

      const skipped = await (await startBackup({ skip: { clickhouse: 'ClickHouse down for maintenance' }, retention: false })).result();
      const skippedManifest = await readManifest(s3, bucket, skipped.backupId);
      assert.deepEqual(skippedManifest.skipped, [{ component: 'clickhouse', reason: 'ClickHouse down for maintenance' }]);
      assert.equal(skippedManifest.complete, false, 'a backup that skipped a component is partial');
      assert.deepEqual(skippedManifest.lacks, [{ component: 'clickhouse', reason: 'ClickHouse down for maintenance' }]);
      assert.equal(skippedManifest.pieces.filter((p) => p.component === 'clickhouse').length, 0);
      assert.ok(skippedManifest.pieces.some((p) => p.component === 'postgres'));
    } finally {
      await startService('clickhouse');
    }
  });

  it('applies retention: deletes complete backups outside the policy and stale incomplete ones, keeps the newest complete one', async () => {
    // Backups dated 2020 belong to this test; an earlier run's leftovers would blur "newest of the month".
    const clearTestEra = async () => {
      const keys = await listAllKeys(s3, bucket, 'backups/2020-');
      for (const key of keys) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    };
    await clearTestEra();
    const pgOnly = await (await startBackup({ components: ['postgres'], retention: false })).result();
    const template = await readManifest(s3, bucket, pgOnly.backupId);
    // Each planted backup is a complete one of its own folder, signed with the worker's key: a
    // copied manifest (another backup's) would fail its check and be kept aside, counted nowhere.
    const plant = (id: string) =>
      Buffer.from(
        JSON.stringify(
          signManifest(
            { ...template, backupId: id, complete: true, lacks: [], skipped: [], pieces: template.pieces.map((p) => ({ ...p, key: p.key.replace(pgOnly.backupId, id) })) },
            connections.manifestSigningKey!,
          ),
        ),
      );
    // Three complete backups on one day in 2020 (only the newest is that month's keeper) and a
    // stale folder without a manifest.
    const stale = `2020-01-01T01-00-00Z-${randomUUID().slice(0, 6).replace(/-/g, '0')}`;
    const old = ['2020-01-01T02-00-00Z', '2020-01-01T03-00-00Z', '2020-01-01T04-00-00Z'].map(
      (t) => `${t}-${randomUUID().replace(/-/g, '').slice(0, 6)}`,
    );
    for (const id of old) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `backups/${id}/manifest.json`, Body: plant(id) }));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `backups/${id}/postgres/shop.dump`, Body: 'x' }));
    }
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `backups/${stale}/postgres/shop.dump`, Body: 'partial' }));

    // A partial backup applies retention: it fills none of the slots, and is kept by its own rule.
    const latest = await (await startBackup({ components: ['postgres'] })).result();
    assert.equal(latest.complete, false);
    const retention = latest.retention!;
    const deleted = retention.deleted.map((d) => d.id);
    assert.ok(deleted.includes(old[0]!) && deleted.includes(old[1]!), `deleted: ${deleted.join(', ')}`);
    assert.ok(!deleted.includes(old[2]!), 'the newest of 2020-01 is kept by the monthly rule');
    assert.ok(deleted.includes(stale), `the stale incomplete folder ${stale} is deleted; report: ${JSON.stringify(retention)}`);
    assert.ok(
      retention.kept.some((k) => k.id === result.backupId && k.reasons.includes('newest complete backup')),
      `${result.backupId}, the full backup of the first test, is kept as the newest complete one; report: ${JSON.stringify(retention)}`,
    );
    assert.ok(
      retention.kept.some((k) => k.id === latest.backupId && k.reasons.some((r) => r.startsWith('partial'))),
      `${latest.backupId} is kept as a partial backup; report: ${JSON.stringify(retention)}`,
    );
    const folders = await backupFolders();
    for (const id of [old[0]!, old[1]!, stale]) assert.ok(!folders.includes(id), `${id} is gone`);
    assert.ok(folders.includes(old[2]!) && folders.includes(latest.backupId));
    await clearTestEra();
  });
});
