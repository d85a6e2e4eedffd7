import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, DeleteObjectsCommand, PutBucketVersioningCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin, Kafka, Producer } from 'kafkajs';
import pg from 'pg';
import { writeDemoMarkers } from '../../activities/demoReset/activities';
import { bucketFigures, emptyBucket } from '../../activities/objectStore/demoReset';
import { listBucket } from '../../activities/objectStore/backup';
import { createTopicsAndWait } from '../../activities/kafka/topics';
import { Failure } from '../../contracts/failures';
import type { DemoResetReport } from '../../contracts/demoResetTypes';
import { writeDerivedConfig, type RawConfig } from '../../localStack/derivedConfig';
import type { LoadedConfig } from '../../workers/config';
import { createConnections, type Connections } from '../../workers/connections';
import type { demoReset, DemoResetInput } from '../../workflows/demoReset';
import type { platformBackup } from '../../workflows/platformBackup';
import { listAllKeys, objectBytes, sha256 } from '../helpers/backupBucket';
import { startBarrierKills } from '../helpers/barrierKills';
import { startStackWorker, type StackWorker } from '../helpers/stackWorker';
import { RESUME_WITHIN_MS } from '../../workflows/activityOptions';

// A demo platform of this test's own (demo_<run>, demo-<run>-*), backed up as the golden backup
// with a config whose inventory names only it; then changed, and reset from that backup.

const run = randomUUID().slice(0, 8);
const DB = `demo_${run}`;
const TOPICS = { orders: `demo-${run}-orders`, state: `demo-${run}-state` };
const MARKER_TOPIC = `demo-${run}-marker`;
const GROUP = `demo-${run}-billing`;
const BUCKET = `demo-${run}-data`;

function goldenConfig(name: string, change: (raw: RawConfig) => void = () => undefined): LoadedConfig {
  return writeDerivedConfig(`demo-golden-${name}-${run}`, (raw) => {
    raw.environment = 'demo';
    raw.postgres = { ...raw.postgres!, databases: [DB] };
    raw.clickhouse = { ...raw.clickhouse!, databases: [{ name: DB, tables: [] }] };
    raw.objectStore = { ...raw.objectStore!, buckets: [BUCKET] };
    raw.backup = { ...raw.backup, kafkaDataTopics: [TOPICS.orders, TOPICS.state] };
    raw.demoReset = { kafkaTopics: [TOPICS.orders, TOPICS.state], kafkaMarkerTopic: MARKER_TOPIC, confirmationTimeoutMinutes: 0.15 };
    change(raw);
  });
}

describe('demoReset reseeded from a golden backup, on the real stack', () => {
  let loaded: LoadedConfig;
  let connections: Connections;
  let worker: StackWorker;
  let s3: S3Client;
  let ch: ClickHouseClient;
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;
  let goldenId: string;
  let golden: Awaited<ReturnType<typeof state>>;
  let readers = 0;

  const sql = async <T extends pg.QueryResultRow>(database: string, text: string): Promise<T[]> => {
    const client = new pg.Client(connections.postgres(database));
    await client.connect();
    try {
      return (await client.query<T>(text)).rows;
    } finally {
      await client.end();
    }
  };
  const chRows = async <T>(query: string) => (await ch.query({ query, format: 'JSONEachRow' })).json<T>();

  /** Every message of a topic, per partition in offset order (key and value), read with a throw-away group. */
  async function readTopic(topic: string): Promise<Record<number, string[]>> {
    const offsets = await admin.fetchTopicOffsets(topic);
    const total = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
    const got: Record<number, string[]> = Object.fromEntries(offsets.map((o) => [o.partition, []]));
    if (total === 0) return got;
    const groupId = `demo-golden-reader-${run}-${readers++}`;
    const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      let seen = 0;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`read ${seen} of ${total} messages of ${topic} in 60 s`)), 60_000);
        consumer
          .run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              got[partition]!.push(`${message.key?.toString()}=${message.value?.toString()}`);
              if (++seen >= total) {
                clearTimeout(timer);
                resolve();
              }
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
      await admin.deleteGroups([groupId]).catch(() => undefined);
    }
    return got;
  }
  const messageCounts = async (topic: string) => (await admin.fetchTopicOffsets(topic)).map((o) => ({ partition: o.partition, messages: Number(o.high) - Number(o.low) })).sort((a, b) => a.partition - b.partition);

  /** Everything the demo holds, read independently of ballast: counts, checksums, messages, objects. */
  const state = async () => ({
    postgres: Object.fromEntries(
      await Promise.all(
        ['customers', 'orders'].map(async (t) => [t, (await sql<{ n: string; sum: string }>(DB, `SELECT count(*)::text AS n, md5(coalesce(string_agg(x::text, ',' ORDER BY x.id), '')) AS sum FROM ${t} x`))[0]] as const),
      ),
    ),
    clickhouse: await chRows<{ partition_id: string; rows: string }>(`SELECT partition_id, toString(sum(rows)) AS rows FROM system.parts WHERE database = '${DB}' AND table = 'events' AND active GROUP BY partition_id ORDER BY partition_id`),
    kafka: {
      orders: { counts: await messageCounts(TOPICS.orders), messages: await readTopic(TOPICS.orders) },
      state: { counts: await messageCounts(TOPICS.state), messages: await readTopic(TOPICS.state) },
    },
    objects: await Promise.all((await listBucket(s3, BUCKET)).sort((a, b) => a.key.localeCompare(b.key)).map(async (o) => ({ key: o.key, size: o.size, sha256: sha256(await objectBytes(s3, BUCKET, o.key)) }))),
    versions: await bucketFigures(s3, BUCKET),
  });

  /** Asides a restore keeps: the reseed must leave none. */
  const leftBehind = async () => ({
    databases: (await sql<{ datname: string }>('postgres', `SELECT datname FROM pg_database WHERE datname LIKE '${DB}%'`)).map((r) => r.datname).filter((d) => d !== DB),
    tables: (await chRows<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${DB}' AND name NOT IN ('events', '__ballast_demo')`)).map((r) => r.name),
  });

  before(async () => {
    loaded = goldenConfig('main');
    connections = createConnections(loaded.config, loaded.path);
    s3 = connections.s3();
    ch = connections.clickhouse();
    kafka = connections.kafka();
    admin = kafka.admin();
    await admin.connect();
    producer = kafka.producer();
    await producer.connect();

    await sql('postgres', `CREATE DATABASE ${DB}`);
    await sql(DB, 'CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL)');
    await sql(DB, 'CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id), amount numeric NOT NULL)');
    await sql(DB, "INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 40) g");
    await sql(DB, 'INSERT INTO orders (customer_id, amount) SELECT 1 + g % 40, g FROM generate_series(1, 150) g');
    await ch.command({ query: `CREATE DATABASE ${DB}` });
    await ch.command({ query: `CREATE TABLE ${DB}.events (day Date, id UInt64, kind String) ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY id` });
    await ch.command({ query: `INSERT INTO ${DB}.events SELECT toDate('2026-01-01') + number % 60, number, 'golden' FROM system.numbers LIMIT 700` });
    await createTopicsAndWait(admin, [
      { topic: TOPICS.orders, numPartitions: 3, replicationFactor: 3 },
      { topic: TOPICS.state, numPartitions: 2, replicationFactor: 3, configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'min.compaction.lag.ms', value: '3600000' }] },
    ]);
    // Every partition gets messages: each is sent to a partition of its own choosing.
    const batch = (topic: string, n: number, partitions: number, tag: string) => ({ topic, messages: Array.from({ length: n }, (_, i) => ({ key: `k${i % 7}`, value: `${tag}${i}`, partition: i % partitions })) });
    await producer.sendBatch({ topicMessages: [batch(TOPICS.orders, 60, 3, 'golden-order-'), batch(TOPICS.state, 25, 2, 'golden-state-')], acks: -1 });
    const offsets = await admin.fetchTopicOffsets(TOPICS.orders);
    await admin.setOffsets({ groupId: GROUP, topic: TOPICS.orders, partitions: offsets.map((p) => ({ partition: p.partition, offset: p.high })) });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: 'Enabled' } }));
    for (let i = 0; i < 5; i++) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `o/${i}.txt`, Body: `golden ${i} `.repeat(i + 1) }));
    await writeDemoMarkers({ config: loaded.config, connections });
    worker = await startStackWorker(loaded);

    // The golden backup: a platformBackup of exactly this demo's inventory, signed as every backup is.
    const backup = await worker.client.workflow.execute<typeof platformBackup>('platformBackup', { taskQueue: worker.taskQueue, workflowId: `demo-golden-backup-${run}`, args: [{ retention: false }] });
    goldenId = backup.backupId;
    golden = await state();
    assert.deepEqual(golden.kafka.orders.counts.map((p) => p.messages), [20, 20, 20]);
    assert.equal(golden.objects.length, 5);
    assert.equal(golden.clickhouse.length, 3, JSON.stringify(golden.clickhouse));
  });

  after(async () => {
    await worker?.close();
    for (const name of await sql<{ datname: string }>('postgres', `SELECT datname FROM pg_database WHERE datname LIKE '${DB}%'`).catch(() => [])) {
      await sql('postgres', `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name.datname)} WITH (FORCE)`).catch(() => undefined);
    }
    await ch?.command({ query: `DROP DATABASE IF EXISTS ${DB}` }).catch(() => undefined);
    await admin?.deleteGroups([GROUP]).catch(() => undefined);
    await admin?.deleteTopics({ topics: [TOPICS.orders, TOPICS.state, MARKER_TOPIC] }).catch(() => undefined);
    await emptyBucket(s3, BUCKET, () => undefined).catch(() => undefined);
    await s3.send(new DeleteBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    // The golden backup lives in the shared backup bucket: removed, so no one's "latest" meets it.
    if (goldenId) {
      const keys = await listAllKeys(s3, loaded.config.objectStore.backupBucket, `backups/${goldenId}/`);
      for (let at = 0; at < keys.length; at += 1000) {
        await s3.send(new DeleteObjectsCommand({ Bucket: loaded.config.objectStore.backupBucket, Delete: { Objects: keys.slice(at, at + 1000).map((Key) => ({ Key })) } }));
      }
    }
    await producer?.disconnect();
    await admin?.disconnect();
    await ch?.close();
    s3?.destroy();
  });

  const start = (input: DemoResetInput, on: StackWorker = worker) =>
    on.client.workflow.start<typeof demoReset>('demoReset', { taskQueue: on.taskQueue, workflowId: `demo-golden-test-${run}-${randomUUID().slice(0, 6)}`, args: [input] });
  const failureOf = async (handle: WorkflowHandle) => {
    const err = await handle.result().catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError, `expected a failed run, got ${JSON.stringify(err)}`);
    return err.cause as ApplicationFailure;
  };
  const manifestKey = () => `backups/${goldenId}/manifest.json`;

  it('refuses at plan, with nothing changed, a golden backup that does not exist or whose manifest was tampered with', async () => {
    const before_ = await state();
    const missing = await failureOf(await start({ force: true, reseed: { backup: `${goldenId}-none` } }));
    assert.equal(missing.type, Failure.BackupIncomplete);
    assert.match(missing.message, new RegExp(`^input\\.reseed\\.backup: golden backup ${goldenId}-none: .*has no manifest\\.json`));

    // The config's default names its own field.
    const configured = goldenConfig('configured', (raw) => {
      raw.demoReset = { ...raw.demoReset, goldenBackupId: `${goldenId}-none` };
    });
    const configuredWorker = await startStackWorker(configured);
    try {
      const refused = await failureOf(await start({ force: true }, configuredWorker));
      assert.match(refused.message, /^demoReset\.goldenBackupId: golden backup /);
      const empty: DemoResetReport = await (await start({ dryRun: true, reseed: 'empty' }, configuredWorker)).result();
      assert.equal(empty.reseed, 'empty', '"empty" overrides the configured golden backup');
    } finally {
      await configuredWorker.close();
    }

    const bucket = loaded.config.objectStore.backupBucket;
    const original = await objectBytes(s3, bucket, manifestKey());
    const manifest = JSON.parse(original.toString()) as { pieces: { name: string; rows?: number }[] };
    manifest.pieces.find((p) => p.name === DB)!.rows = 1;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey(), Body: JSON.stringify(manifest) }));
    try {
      const tampered = await failureOf(await start({ force: true, reseed: { backup: goldenId } }));
      assert.equal(tampered.type, Failure.BackupNotAuthentic);
      assert.match(tampered.message, new RegExp(`^input\\.reseed\\.backup: golden backup ${goldenId}: `));
    } finally {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey(), Body: original }));
    }
    assert.deepEqual(await state(), before_, 'nothing changed');
  });

  it('the dry run lists the reseed with the golden figures, and its hash covers them', async () => {
    const report: DemoResetReport = await (await start({ dryRun: true, reseed: { backup: goldenId } })).result();
    const row = (target: string) => report.rows.find((r) => r.target === target && r.action.includes('golden'))?.before;
    assert.equal(row(`postgres ${DB}.public.orders`), 'golden: 150 rows');
    assert.equal(row(`clickhouse ${DB}.events`), 'golden: 700 rows');
    assert.equal(row(`topic ${TOPICS.orders}`), 'golden: 60 messages in 3 partitions');
    assert.equal(row(`bucket ${BUCKET}`), `golden: 5 objects, ${golden.objects.reduce((n, o) => n + o.size, 0)} bytes`);
    const empty: DemoResetReport = await (await start({ dryRun: true, reseed: 'empty' })).result();
    assert.notEqual(empty.planHash, report.planHash, 'the reseed is part of what is confirmed');
  });

  it('after the data changed, a forced reset reseeded from the golden backup leaves every store equal to it', { timeout: 10 * 60_000 }, async () => {
    await sql(DB, "INSERT INTO customers (name) SELECT 'changed ' || g FROM generate_series(1, 15) g");
    await sql(DB, 'UPDATE orders SET amount = amount + 1 WHERE id < 20');
    await ch.command({ query: `INSERT INTO ${DB}.events SELECT toDate('2026-05-01'), number, 'changed' FROM system.numbers LIMIT 50` });
    await producer.sendBatch({ topicMessages: [{ topic: TOPICS.orders, messages: Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 7}`, value: `changed-${i}`, partition: i % 3 })) }], acks: -1 });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'o/0.txt', Body: 'changed' }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'o/new.txt', Body: 'new' }));
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'o/4.txt' }));
    assert.notDeepEqual(await state(), golden);

    const report: DemoResetReport = await (await start({ force: true, reseed: { backup: goldenId } })).result();
    assert.equal(report.verified, true, report.verification.join('\n'));
    console.log(`golden reseed phases (ms): ${JSON.stringify(report.phaseDurationsMs)}; checks: ${report.verification.join('; ')}`);
    const now = await state();
    // Kafka offsets differ after the purge (the messages sit after the new log start): counts and content are compared.
    assert.deepEqual(now.kafka, golden.kafka, 'messages per partition, in order, as in the golden backup');
    assert.deepEqual(now.postgres, golden.postgres, 'postgres rows and content checksums');
    assert.deepEqual(now.clickhouse, golden.clickhouse, 'clickhouse rows per partition');
    assert.deepEqual(now.objects, golden.objects, 'objects by key, size and sha256');
    assert.deepEqual({ ...now.versions, bytes: 0 }, { bucket: BUCKET, objects: 5, versions: 5, deleteMarkers: 0, bytes: 0 }, 'no older versions or delete markers');
    assert.deepEqual(await leftBehind(), { databases: [], tables: [] }, 'no kept-aside copies of the wiped demo');
    const committed = (await admin.fetchOffsets({ groupId: GROUP, topics: [TOPICS.orders] }))[0]!.partitions;
    const ends = await admin.fetchTopicOffsets(TOPICS.orders);
    assert.deepEqual(committed.map((p) => p.offset).sort(), ends.map((p) => p.high).sort(), 'the group is where the golden backup had it: at the end of each partition');
    const reseedRow = report.rows.find((r) => r.target === `postgres ${DB}.public.customers` && r.action.includes('golden'))!;
    assert.deepEqual([reseedRow.before, reseedRow.after], ['golden: 40 rows', '40 rows']);
    const dry: DemoResetReport = await (await start({ dryRun: true })).result();
    assert.ok(dry.markers.every((m) => m.present), 'the markers survive the reseed');
  });

  it('a worker SIGKILLed at every activity boundary: the golden reseed still completes, equal to the backup, each step resumed within 30 s', { timeout: 15 * 60_000 }, async () => {
    await sql(DB, "INSERT INTO customers (name) VALUES ('changed again')");
    await producer.sendBatch({ topicMessages: [{ topic: TOPICS.state, messages: [{ key: 'k1', value: 'changed again', partition: 0 }] }], acks: -1 });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'o/1.txt', Body: 'changed again' }));
    // The golden backup comes from the config here, as a schedule's runs would take it.
    const killConfig = goldenConfig('kill', (raw) => {
      raw.temporal = { ...raw.temporal, taskQueue: `ballast-demo-golden-kill-${run}` };
      raw.demoReset = { ...raw.demoReset, goldenBackupId: goldenId };
    });
    const kills = await startBarrierKills(killConfig.path);
    try {
      const handle = await worker.client.workflow.start<typeof demoReset>('demoReset', { taskQueue: killConfig.config.temporal.taskQueue, workflowId: `demo-golden-kill-${run}`, args: [{ force: true }] });
      const report = await handle.result();
      assert.equal(report.verified, true, report.verification.join('\n'));
      assert.deepEqual(await state(), golden, 'every store equal to the golden backup');
      assert.deepEqual(await leftBehind(), { databases: [], tables: [] }, 'no kept-aside copies of the wiped demo');
      const held = new Set<string>();
      let slowest = 0;
      for (const resume of kills.resumes()) {
        held.add(resume.type);
        assert.ok(resume.ms <= RESUME_WITHIN_MS, `${resume.type} started again ${resume.ms} ms after its worker was killed`);
        slowest = Math.max(slowest, resume.ms);
      }
      for (const type of ['planDemoReset', 'acquireRestoreLeases', 'checkDemoGuard', 'restorePostgresDatabase', 'restoreClickHouseTable', 'restoreKafka', 'restoreBucket', 'dropWipedDemoCopies', 'verifyPostgresDatabase', 'verifyKafka', 'verifyGoldenObjects', 'releaseRestoreLeases']) {
        assert.ok(held.has(type), `${type} was one of the kill points`);
      }
      console.log(`demoReset golden reseed: ${kills.killedAt.size} workers killed, slowest resume ${slowest} ms`);
    } finally {
      await kills.stop();
    }
  });
});
