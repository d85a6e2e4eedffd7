import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteBucketTaggingCommand,
  DeleteObjectCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  PutBucketTaggingCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import type { ClickHouseClient } from '@clickhouse/client';
import { ConfigResourceTypes, type Admin, type Producer } from 'kafkajs';
import pg from 'pg';
import { writeDemoMarkers } from '../../activities/demoReset/activities';
import { bucketFigures, emptyBucket } from '../../activities/objectStore/demoReset';
import { createTopicsAndWait } from '../../activities/kafka/topics';
import { Failure } from '../../contracts/failures';
import type { DemoResetReport } from '../../contracts/demoResetTypes';
import { createApprovers } from '../../localStack/approvers';
import { writeDerivedConfig, type RawConfig } from '../../localStack/derivedConfig';
import type { LoadedConfig } from '../../workers/config';
import { createConnections, type Connections } from '../../workers/connections';
import { ensureDemoResetSchedule } from '../../workers/schedules';
import { confirmUpdate } from '../../workflows/approval';
import { demoResetStatusQuery, type demoReset, type DemoResetInput } from '../../workflows/demoReset';
import { RESUME_WITHIN_MS } from '../../workflows/activityOptions';
import { startBarrierKills } from '../helpers/barrierKills';
import { eventually, startStackWorker, type StackWorker } from '../helpers/stackWorker';

// A demo platform of this test's own inside the shared stack: a Postgres database, a ClickHouse
// database, Kafka topics (one compacted) with a consumer group, a versioned and a plain bucket,
// all named demo_<run> / demo-<run>-*, and a config whose inventory names only those. The real
// seeded platform is never in any config here, so no reset can reach it.

const run = randomUUID().slice(0, 8);
const DB = `demo_${run}`;
const TOPICS = { orders: `demo-${run}-orders`, state: `demo-${run}-state` };
const MARKER_TOPIC = `demo-${run}-marker`;
const GROUP = `demo-${run}-billing`;
const BUCKETS = { versioned: `demo-${run}-data`, plain: `demo-${run}-plain` };
const ROWS = { customers: 50, orders: 200, events: 1_000, audit: 30 };
const MESSAGES = { orders: 90, state: 40 };

function demoConfig(name: string, change: (raw: RawConfig) => void = () => undefined): LoadedConfig {
  return writeDerivedConfig(`demo-reset-${name}-${run}`, (raw) => {
    raw.environment = 'demo';
    raw.postgres = { ...raw.postgres!, databases: [DB] };
    raw.clickhouse = { ...raw.clickhouse!, databases: [{ name: DB, tables: [] }] };
    raw.objectStore = { ...raw.objectStore!, buckets: [BUCKETS.versioned, BUCKETS.plain] };
    raw.backup = { ...raw.backup, kafkaDataTopics: [] };
    raw.approvals = { ...raw.approvals, approvers: ['alice', 'bob'], fourEyes: true };
    raw.demoReset = { kafkaTopics: [TOPICS.orders, TOPICS.state], kafkaMarkerTopic: MARKER_TOPIC, confirmationTimeoutMinutes: 0.15 };
    change(raw);
  });
}

describe('demoReset on the real stack (a demo platform of its own)', () => {
  let loaded: LoadedConfig;
  let connections: Connections;
  let worker: StackWorker;
  let s3: S3Client;
  let ch: ClickHouseClient;
  let admin: Admin;
  let producer: Producer;

  const sql = async <T extends pg.QueryResultRow>(database: string, text: string): Promise<T[]> => {
    const client = new pg.Client(connections.postgres(database));
    await client.connect();
    try {
      return (await client.query<T>(text)).rows;
    } finally {
      await client.end();
    }
  };
  const chCount = async (table: string) => Number((await (await ch.query({ query: `SELECT count() AS n FROM ${DB}.${table}`, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n);
  const watermarks = async (topic: string) => (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, low: Number(p.low), high: Number(p.high) })).sort((a, b) => a.partition - b.partition);
  const groupOffsets = async () => (await admin.fetchOffsets({ groupId: GROUP, topics: [TOPICS.orders] }))[0]!.partitions.map((p) => ({ partition: p.partition, offset: Number(p.offset) })).sort((a, b) => a.partition - b.partition);
  const topicConfig = async (topic: string, name: string) =>
    (await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [name] }] })).resources[0]!.configEntries[0]!.configValue;

  /** Everything the demo holds, read independently of ballast's own figures. */
  const state = async () => ({
    postgres: {
      customers: Number((await sql<{ n: string }>(DB, 'SELECT count(*) AS n FROM customers'))[0]!.n),
      orders: Number((await sql<{ n: string }>(DB, 'SELECT count(*) AS n FROM orders'))[0]!.n),
      audit: Number((await sql<{ n: string }>(DB, 'SELECT count(*) AS n FROM audit.log'))[0]!.n),
    },
    clickhouse: { events: await chCount('events'), audit: await chCount('audit') },
    kafka: { orders: await watermarks(TOPICS.orders), state: await watermarks(TOPICS.state), group: await groupOffsets() },
    buckets: { versioned: await bucketFigures(s3, BUCKETS.versioned), plain: await bucketFigures(s3, BUCKETS.plain) },
  });

  /** Fills (or refills) the demo platform: rows, messages, a committed group, object versions and delete markers. */
  async function fill(): Promise<void> {
    await sql(DB, `INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, ${ROWS.customers}) g`);
    await sql(DB, `INSERT INTO orders (customer_id, amount) SELECT (SELECT min(id) FROM customers), g FROM generate_series(1, ${ROWS.orders}) g`);
    await sql(DB, `INSERT INTO audit.log (what) SELECT 'event ' || g FROM generate_series(1, ${ROWS.audit}) g`);
    await ch.command({ query: `INSERT INTO ${DB}.events SELECT toDate('2026-01-01') + number % 60, number, 'e' FROM system.numbers LIMIT ${ROWS.events}` });
    await ch.command({ query: `INSERT INTO ${DB}.audit SELECT number, 'a' FROM system.numbers LIMIT ${ROWS.audit}` });
    const batch = (topic: string, n: number) => ({ topic, messages: Array.from({ length: n }, (_, i) => ({ key: `k${i % 10}`, value: `m${i}` })) });
    await producer.sendBatch({ topicMessages: [batch(TOPICS.orders, MESSAGES.orders), batch(TOPICS.state, MESSAGES.state)], acks: -1 });
    const orders = await watermarks(TOPICS.orders);
    await admin.setOffsets({ groupId: GROUP, topic: TOPICS.orders, partitions: orders.map((p) => ({ partition: p.partition, offset: String(Math.floor((p.low + p.high) / 2)) })) });
    for (let i = 0; i < 6; i++) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKETS.versioned, Key: `o/${i}.txt`, Body: `first ${i}` }));
      await s3.send(new PutObjectCommand({ Bucket: BUCKETS.plain, Key: `p/${i}.txt`, Body: `plain ${i}` }));
    }
    // Second versions of three objects, and delete markers on two: what `rm -r` would leave behind.
    for (let i = 0; i < 3; i++) await s3.send(new PutObjectCommand({ Bucket: BUCKETS.versioned, Key: `o/${i}.txt`, Body: `second ${i}` }));
    for (const i of [4, 5]) await s3.send(new DeleteObjectCommand({ Bucket: BUCKETS.versioned, Key: `o/${i}.txt` }));
  }

  before(async () => {
    loaded = demoConfig('main');
    connections = createConnections(loaded.config, loaded.path);
    s3 = connections.s3();
    ch = connections.clickhouse();
    admin = connections.kafka().admin();
    await admin.connect();
    producer = connections.kafka().producer();
    await producer.connect();

    await sql('postgres', `CREATE DATABASE ${DB}`);
    await sql(DB, 'CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL)');
    await sql(DB, 'CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id), amount numeric NOT NULL)');
    await sql(DB, 'CREATE SCHEMA audit');
    await sql(DB, 'CREATE TABLE audit.log (id serial PRIMARY KEY, what text NOT NULL)');
    await ch.command({ query: `CREATE DATABASE ${DB}` });
    await ch.command({ query: `CREATE TABLE ${DB}.events (day Date, id UInt64, kind String) ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY id` });
    await ch.command({ query: `CREATE TABLE ${DB}.audit (id UInt64, what String) ENGINE = Log` });
    await createTopicsAndWait(admin, [
      { topic: TOPICS.orders, numPartitions: 3, replicationFactor: 3 },
      { topic: TOPICS.state, numPartitions: 2, replicationFactor: 3, configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'min.compaction.lag.ms', value: '3600000' }] },
    ]);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKETS.versioned }));
    await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKETS.versioned, VersioningConfiguration: { Status: 'Enabled' } }));
    await s3.send(new CreateBucketCommand({ Bucket: BUCKETS.plain }));
    await fill();
    await s3.send(new PutBucketTaggingCommand({ Bucket: BUCKETS.plain, Tagging: { TagSet: [{ Key: 'team', Value: 'sales-demo' }] } }));
    // The explicit marker step: what scripts/markDemo.ts (and the seed) run.
    await writeDemoMarkers({ config: loaded.config, connections });
    worker = await startStackWorker(loaded);
  });

  after(async () => {
    await worker?.close();
    await sql('postgres', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`).catch(() => undefined);
    await ch?.command({ query: `DROP DATABASE IF EXISTS ${DB}` }).catch(() => undefined);
    await admin?.deleteGroups([GROUP]).catch(() => undefined);
    await admin?.deleteTopics({ topics: [TOPICS.orders, TOPICS.state, MARKER_TOPIC] }).catch(() => undefined);
    for (const bucket of Object.values(BUCKETS)) {
      await emptyBucket(s3, bucket, () => undefined).catch(() => undefined);
      await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
    }
    await producer?.disconnect();
    await admin?.disconnect();
    await ch?.close();
    s3?.destroy();
  });

  const start = (input: DemoResetInput, on: StackWorker = worker) =>
    on.client.workflow.start<typeof demoReset>('demoReset', { taskQueue: on.taskQueue, workflowId: `demo-reset-test-${run}-${randomUUID().slice(0, 6)}`, args: [input] });
  const failureOf = async (handle: WorkflowHandle) => {
    const err = await handle.result().catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError, `expected a failed run, got ${JSON.stringify(err)}`);
    return err.cause as ApplicationFailure;
  };
  const waitingHash = async (handle: WorkflowHandle) =>
    (await eventually('the confirmation wait', async () => {
      const s = await handle.query(demoResetStatusQuery);
      return s.phase === 'awaiting confirmation' ? s : undefined;
    }, 60_000, 200)).plan!.hash;

  it('a dry run gives the real figures, marker by marker, and changes nothing', async () => {
    const real = await state();
    const report: DemoResetReport = await (await start({ dryRun: true })).result();
    assert.deepEqual(await state(), real, 'nothing changed');
    assert.ok(report.markers.length === 5 && report.markers.every((m) => m.present), JSON.stringify(report.markers));
    const tags = (await s3.send(new GetBucketTaggingCommand({ Bucket: BUCKETS.plain }))).TagSet ?? [];
    assert.deepEqual(tags.map((t) => `${t.Key}=${t.Value}`).sort(), ['ballast-environment=demo', 'team=sales-demo'], 'the marker tag is added beside the bucket\'s own tags');
    const row = (target: string) => report.rows.find((r) => r.target === target)?.before;
    assert.equal(row(`postgres ${DB}.public.customers`), `${ROWS.customers} rows`);
    assert.equal(row(`postgres ${DB}.public.orders`), `${ROWS.orders} rows`);
    assert.equal(row(`postgres ${DB}.audit.log`), `${ROWS.audit} rows`);
    assert.equal(row(`clickhouse ${DB}.events`), `${ROWS.events} rows`);
    assert.equal(row(`clickhouse ${DB}.audit`), `${ROWS.audit} rows`);
    assert.equal(row(`topic ${TOPICS.orders}`), `${MESSAGES.orders} messages in 3 partitions`);
    assert.equal(row(`topic ${TOPICS.state}`), `${MESSAGES.state} messages in 2 partitions`);
    // 6 first versions + 3 second versions; 2 delete markers; 4 current objects.
    assert.equal(row(`bucket ${BUCKETS.versioned}`), `4 objects, 9 versions, 2 delete markers, ${real.buckets.versioned.bytes} bytes`);
    assert.deepEqual({ ...real.buckets.versioned, bytes: 0 }, { bucket: BUCKETS.versioned, objects: 4, versions: 9, deleteMarkers: 2, bytes: 0 });
    const lag = real.kafka.group.reduce((n, g) => n + real.kafka.orders.find((p) => p.partition === g.partition)!.high - g.offset, 0);
    assert.equal(row(`consumer group ${GROUP}`), `3 offsets, lag ${lag}, 0 members`);
    assert.ok(report.rows.every((r) => r.after === 'unchanged (dry run)'));
    assert.match(report.planHash, /^sha256:[0-9a-f]{64}$/);
    const again: DemoResetReport = await (await start({ dryRun: true })).result();
    assert.equal(again.planHash, report.planHash, 'the same state gives the same plan hash');
  });

  it('refuses a production config and a system without its marker at plan, even with force', async () => {
    const approvers = await createApprovers(['alice', 'bob']);
    const production = demoConfig('production', (raw) => {
      raw.environment = 'production';
      raw.approvals = { ...raw.approvals, allowedSignersFile: approvers.allowedSignersFile };
      raw.kafka = { ...raw.kafka!, restart: { backend: 'command', command: ['true'] } };
    });
    const prodWorker = await startStackWorker(production);
    const before_ = await state();
    try {
      const refused = await failureOf(await start({ force: true }, prodWorker));
      assert.equal(refused.type, Failure.DemoGuardRefused);
      assert.match(refused.message, /environment is production, not demo/);
    } finally {
      await prodWorker.close();
    }
    // A bucket loses its tag: the whole reset is refused, naming it, and nothing else is touched either.
    await s3.send(new DeleteBucketTaggingCommand({ Bucket: BUCKETS.plain }));
    try {
      const refused = await failureOf(await start({ force: true }));
      assert.equal(refused.type, Failure.DemoGuardRefused);
      assert.match(refused.message, new RegExp(`no demo marker on bucket ${BUCKETS.plain}`));
    } finally {
      await writeDemoMarkers({ config: loaded.config, connections });
    }
    // A Kafka cluster without the configured marker topic.
    const otherMarker = demoConfig('no-kafka-marker', (raw) => {
      raw.demoReset = { ...raw.demoReset, kafkaMarkerTopic: `demo-${run}-no-such-marker` };
    });
    const otherWorker = await startStackWorker(otherMarker);
    try {
      const refused = await failureOf(await start({ force: true }, otherWorker));
      assert.equal(refused.type, Failure.DemoGuardRefused);
      assert.match(refused.message, /no demo marker on kafka cluster \(marker topic demo-.*-no-such-marker\)/);
    } finally {
      await otherWorker.close();
    }
    assert.deepEqual(await state(), before_, 'nothing changed');
  });

  it('refuses a wrong environment name and a wrong plan hash; unconfirmed, it times out with nothing changed', async () => {
    const before_ = await state();
    const handle = await start({});
    const hash = await waitingHash(handle);
    const refusal = async (answer: object) => {
      const err = await handle.executeUpdate(confirmUpdate, { args: [answer as never] }).then(() => undefined, (e: unknown) => e);
      assert.ok(err, 'refused');
      return String((err as { cause?: Error }).cause?.message ?? err);
    };
    assert.match(await refusal({ environment: 'production', plan: hash, by: 'bob', reason: 'reset' }), /not this run's environment/);
    assert.match(await refusal({ environment: 'demo', plan: `sha256:${'1'.repeat(64)}`, by: 'bob', reason: 'reset' }), /waits on plan/);
    const failure = await failureOf(handle);
    assert.equal(failure.type, Failure.ApprovalTimedOut);
    assert.deepEqual(await state(), before_, 'nothing changed');
  });

  it('with keep: [kafka], confirmed, Kafka is untouched and the rest is empty; versions and delete markers are gone', async () => {
    const before_ = await state();
    const handle = await start({ keep: ['kafka'] });
    const hash = await waitingHash(handle);
    assert.equal(await handle.executeUpdate(confirmUpdate, { args: [{ environment: 'demo', plan: hash, by: 'bob', reason: 'demo reset test' }] }), 'confirmed by bob');
    const report: DemoResetReport = await handle.result();
    assert.equal(report.verified, true, report.verification.join('\n'));
    const after_ = await state();
    assert.deepEqual(after_.kafka, before_.kafka, 'kafka untouched');
    assert.deepEqual(after_.postgres, { customers: 0, orders: 0, audit: 0 });
    assert.deepEqual(after_.clickhouse, { events: 0, audit: 0 });
    for (const b of [after_.buckets.versioned, after_.buckets.plain]) assert.deepEqual({ ...b, bucket: '' }, { bucket: '', objects: 0, versions: 0, deleteMarkers: 0, bytes: 0 });
    // The bucket, its versioning and its tags stay; identities restart.
    assert.equal((await s3.send(new GetBucketVersioningCommand({ Bucket: BUCKETS.versioned }))).Status, 'Enabled');
    assert.ok((await s3.send(new GetBucketTaggingCommand({ Bucket: BUCKETS.versioned }))).TagSet?.some((t) => t.Key === 'ballast-environment'));
    await sql(DB, "INSERT INTO customers (name) VALUES ('first again')");
    assert.equal((await sql<{ id: number }>(DB, 'SELECT id FROM customers'))[0]!.id, 1, 'RESTART IDENTITY');
    await sql(DB, 'TRUNCATE customers CASCADE');
    assert.ok(report.rows.some((r) => r.component === 'kafka' && r.kept));
    assert.equal(report.confirmation?.by, 'bob');
  });

  it('forced, it purges every partition (the compacted topic too, its policy restored) and moves the group to the new start', async () => {
    await fill();
    const before_ = await state();
    const report: DemoResetReport = await (await start({ force: true })).result();
    assert.equal(report.verified, true, report.verification.join('\n'));
    console.log(`forced demo reset phases (ms): ${JSON.stringify(report.phaseDurationsMs)}`);
    const after_ = await state();
    for (const topic of ['orders', 'state'] as const) {
      assert.deepEqual(after_.kafka[topic], before_.kafka[topic].map((p) => ({ partition: p.partition, low: p.high, high: p.high })), `${topic}: purged to the high watermark, partitions kept`);
    }
    // A config change reaches each broker in its own time: the policy read back may lag a moment.
    await eventually('the compacted topic\'s policy back to compact', async () => ((await topicConfig(TOPICS.state, 'cleanup.policy')) === 'compact' ? true : undefined), 20_000, 250);
    assert.equal(await topicConfig(TOPICS.state, 'min.compaction.lag.ms'), '3600000', 'its other overrides stay');
    assert.deepEqual(after_.kafka.group, before_.kafka.orders.map((p) => ({ partition: p.partition, offset: p.high })));
    assert.deepEqual(after_.postgres, { customers: 0, orders: 0, audit: 0 });
    assert.equal(after_.buckets.versioned.versions + after_.buckets.versioned.deleteMarkers, 0);
    const dry: DemoResetReport = await (await start({ dryRun: true })).result();
    assert.ok(dry.markers.every((m) => m.present), 'the markers survive the reset');
  });
  it('the guard is checked again before each destructive step: a marker gone after the plan stops the wipe there', async () => {
    await fill();
    const handle = await start({});
    const hash = await waitingHash(handle);
    // The Postgres marker disappears while the run waits: Kafka (wiped first) goes, Postgres is refused, nothing after it starts.
    await sql(DB, 'DROP TABLE public.__ballast_demo');
    try {
      const before_ = await state();
      await handle.executeUpdate(confirmUpdate, { args: [{ environment: 'demo', plan: hash, by: 'bob', reason: 'guard test' }] });
      const refused = await failureOf(handle);
      assert.equal(refused.type, Failure.DemoGuardRefused);
      assert.match(refused.message, new RegExp(`before truncating postgres ${DB}.*no demo marker on postgres database ${DB}`));
      const after_ = await state();
      assert.ok(after_.kafka.orders.every((p) => p.low === p.high), 'kafka, before it, was purged');
      assert.deepEqual(after_.postgres, before_.postgres, 'postgres untouched');
      assert.deepEqual(after_.clickhouse, before_.clickhouse, 'clickhouse, after it, untouched');
      assert.deepEqual(after_.buckets, before_.buckets, 'buckets, after it, untouched');
    } finally {
      await writeDemoMarkers({ config: loaded.config, connections });
    }
  });

  it('the optional schedule exists only when configured, and its runs are forced', async () => {
    const scheduleId = `demo-reset-schedule-${run}`;
    assert.equal(await ensureDemoResetSchedule(worker.client, loaded.config), 'none');
    // Paused (enabled: false): it never starts a run against this test's demo.
    const scheduled = demoConfig('schedule', (raw) => {
      raw.demoReset = { ...raw.demoReset, schedule: { scheduleId, enabled: false } };
    });
    try {
      assert.equal(await ensureDemoResetSchedule(worker.client, scheduled.config), 'created');
      assert.equal(await ensureDemoResetSchedule(worker.client, scheduled.config), 'updated');
      const described = await worker.client.schedule.getHandle(scheduleId).describe();
      assert.equal(described.state.paused, true);
      assert.ok(described.action.type === 'startWorkflow');
      assert.equal(described.action.workflowType, 'demoReset');
      assert.deepEqual(described.action.args, [{ force: true }]);
    } finally {
      await worker.client.schedule.getHandle(scheduleId).delete().catch(() => undefined);
    }
  });

  it('a worker SIGKILLed at every activity boundary: the forced reset still completes, verified, each step resumed within 30 s', { timeout: 15 * 60_000 }, async () => {
    await fill();
    // The barrier kill loop shared with workerKill.test.ts: every first attempt is held, and the
    // worker holding it killed while a replacement starts.
    const killConfig = demoConfig('kill', (raw) => {
      raw.temporal = { ...raw.temporal, taskQueue: `ballast-demo-kill-${run}` };
    });
    const kills = await startBarrierKills(killConfig.path);
    try {
      const handle = await worker.client.workflow.start<typeof demoReset>('demoReset', { taskQueue: killConfig.config.temporal.taskQueue, workflowId: `demo-reset-kill-${run}`, args: [{ force: true }] });
      const report = await handle.result();
      assert.equal(report.verified, true, report.verification.join('\n'));
      const after_ = await state();
      assert.deepEqual(after_.postgres, { customers: 0, orders: 0, audit: 0 });
      assert.deepEqual(after_.clickhouse, { events: 0, audit: 0 });
      assert.ok(after_.kafka.orders.every((p) => p.low === p.high));
      assert.equal(after_.buckets.versioned.versions + after_.buckets.versioned.deleteMarkers, 0);
      await eventually('the compacted topic\'s policy back to compact', async () => ((await topicConfig(TOPICS.state, 'cleanup.policy')) === 'compact' ? true : undefined), 20_000, 250);
      // Every held first attempt was killed, and its step started again on another worker within 30 s.
      const held = new Set<string>();
      let slowest = 0;
      for (const resume of kills.resumes()) {
        held.add(resume.type);
        assert.ok(resume.ms <= RESUME_WITHIN_MS, `${resume.type} started again ${resume.ms} ms after its worker was killed`);
        slowest = Math.max(slowest, resume.ms);
      }
      for (const type of ['planDemoReset', 'purgeDemoTopic', 'resetDemoGroups', 'truncateDemoPostgres', 'truncateDemoClickHouse', 'emptyDemoBucket', 'demoResetFigures', 'writeDemoResetReport']) {
        assert.ok(held.has(type), `${type} was one of the kill points`);
      }
      console.log(`demoReset: ${kills.killedAt.size} workers killed, slowest resume ${slowest} ms`);
    } finally {
      await kills.stop();
    }
  });
});
