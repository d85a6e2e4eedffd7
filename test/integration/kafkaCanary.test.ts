import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { ConfigResourceTypes, Partitioners, type Admin, type Kafka, type PartitionMetadata } from 'kafkajs';
import { CANARY_GROUP_PREFIX, createKafkaCanaryActivities, ensureCanaryTopic, type CanaryHeartbeat } from '../../activities/kafka/roll/canary';
import { MISSING_SAMPLE_SIZE, canaryAccounting, quantile, type CanaryReport } from '../../activities/kafka/roll/canaryReport';
import { retryOnLeaderChange, waitForLeaders } from '../../activities/kafka/topics';
import { restartBroker, startBroker } from '../../localStack';
import { loadConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';

describe('canaryAccounting (pure)', () => {
  it('a clean run: every acknowledged number read once', () => {
    const r = canaryAccounting([0, 1, 2, 3], [0, 1, 2, 3]);
    assert.deepEqual(r, { consumed: 4, ackedMissing: 0, missingSample: [], duplicates: 0, unackedButConsumed: 0 });
  });

  it('counts acknowledged numbers never read as missing, lowest first in the sample', () => {
    const r = canaryAccounting([5, 0, 1, 2, 3, 4], [0, 2, 4]);
    assert.equal(r.ackedMissing, 3);
    assert.deepEqual(r.missingSample, [1, 3, 5]);
    assert.equal(r.consumed, 3);
  });

  it('keeps only the first 20 missing numbers in the sample', () => {
    const acked = Array.from({ length: 100 }, (_, i) => 99 - i);
    const r = canaryAccounting(acked, [50]);
    assert.equal(r.ackedMissing, 99);
    assert.equal(r.missingSample.length, MISSING_SAMPLE_SIZE);
    assert.deepEqual(r.missingSample, Array.from({ length: 20 }, (_, i) => i));
  });

  it('counts copies beyond the first as duplicates, and unacknowledged numbers that landed', () => {
    const r = canaryAccounting([0, 1, 2], [0, 1, 1, 1, 2, 2, 7, 7]);
    assert.equal(r.duplicates, 4);
    assert.equal(r.unackedButConsumed, 1);
    assert.equal(r.consumed, 4);
    assert.equal(r.ackedMissing, 0);
  });

  it('a number acknowledged twice in the input counts once', () => {
    assert.equal(canaryAccounting([1, 1, 2], []).ackedMissing, 2);
  });

  it('nothing sent: nothing missing', () => {
    assert.deepEqual(canaryAccounting([], []), { consumed: 0, ackedMissing: 0, missingSample: [], duplicates: 0, unackedButConsumed: 0 });
  });

  it('quantile by nearest rank', () => {
    assert.equal(quantile([], 0.99), 0);
    assert.equal(quantile([7], 0.99), 7);
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    assert.equal(quantile(hundred, 0.99), 99);
    assert.equal(quantile(hundred, 1), 100);
    assert.equal(quantile([1, 2, 3, 1000], 0.99), 1000);
  });
});

// The real stack (scripts/stack): three brokers, RF 3, min.insync.replicas 2. Everything this test
// creates has a unique name and is deleted at the end. Other tests may restart brokers meanwhile.
const run = randomBytes(4).toString('hex');
const QUIET_TOPIC = `ballast-test-canary-${run}`;
const ROLL_TOPIC = `ballast-test-canary-roll-${run}`;
const CANCEL_TOPIC = `ballast-test-canary-cancel-${run}`;
const RESTARTED_BROKER = 2;

describe('kafka canary activities on the real stack', () => {
  const loaded = loadConfig();
  const connections = createConnections(loaded.config, loaded.path);
  const activities = createKafkaCanaryActivities({ config: loaded.config, connections });
  let kafka: Kafka;
  let admin: Admin;

  before(async () => {
    kafka = connections.kafka();
    admin = kafka.admin();
    await admin.connect();
  });

  after(async () => {
    try {
      await waitForClusterHealthy(admin, 300_000).catch((err) => console.log(`# cluster not healthy at the end: ${String(err)}`));
      const existing = await admin.listTopics();
      const mine = [QUIET_TOPIC, ROLL_TOPIC, CANCEL_TOPIC].filter((t) => existing.includes(t));
      if (mine.length) await admin.deleteTopics({ topics: mine, timeout: 30_000 });
      const groups = (await admin.listGroups()).groups.filter((g) => g.groupId.startsWith(CANARY_GROUP_PREFIX) && g.groupId.includes(run));
      assert.deepEqual(groups, [], 'no canary consumer group of this run is left');
    } finally {
      await admin.disconnect();
    }
  });

  it('without disruption: every message acknowledged and read back, stopped from another activity environment', async () => {
    const canaryId = `test-quiet-${run}`;
    const env = mockEnv();
    const beats: CanaryHeartbeat[] = [];
    env.on('heartbeat', (d: CanaryHeartbeat) => beats.push(d));
    const started = Date.now();
    const running = env.run(activities.runKafkaCanary, { canaryId, topic: QUIET_TOPIC }) as Promise<CanaryReport>;
    running.catch(() => undefined);

    try {
      // ~3 s of producing, counted from the first heartbeat that shows a message sent.
      const producing = Date.now() + 60_000;
      while (!beats.some((b) => b.sent > 0) && Date.now() < producing) await sleep(50);
      assert.ok(beats.some((b) => b.sent > 0), 'the canary started producing');
      await sleep(3_000);
      // The topic was created by the canary itself, as the spec says.
      const { partitions, minInsync } = await topicFacts(connections.kafka(), QUIET_TOPIC);
      assert.equal(partitions.length, 3);
      for (const p of partitions) assert.equal(p.replicas.length, 3, `partition ${p.partitionId} has RF 3`);
      assert.equal(minInsync, '2');

      // The stop travels through Kafka: a separate environment, as a separate worker would be.
      await mockEnv().run(activities.stopKafkaCanary, { canaryId, topic: QUIET_TOPIC });
    } catch (err) {
      env.cancel(); // never leave a canary running behind a failed test
      throw err;
    }
    const report = await withTimeout(running, 90_000, 'the canary to end after the stop marker', () => env.cancel());
    console.log(`# quiet canary (${Date.now() - started} ms): ${summary(report)}`);

    assert.equal(report.canaryId, canaryId);
    assert.equal(report.topic, QUIET_TOPIC);
    // At least 2.5 of the ~3 s of producing, at one message per interval.
    const expected = Math.floor(2_500 / loaded.config.kafka.roll.canaryIntervalMs);
    assert.ok(report.sent >= expected, `sent ${report.sent} >= ${expected}`);
    assert.equal(report.acknowledged, report.sent);
    assert.equal(report.produceErrors, 0);
    assert.equal(report.consumerCaughtUp, true);
    assert.equal(report.ackedMissing, 0, `missing: ${report.missingSample.join(', ')}`);
    assert.deepEqual(report.missingSample, []);
    assert.equal(report.consumed, report.acknowledged, 'the canary read back exactly what was acknowledged');
    assert.equal(report.duplicates, 0);
    assert.equal(report.unackedButConsumed, 0);
    assert.ok(report.maxLatencyMs > 0 && report.maxLatencyMs < 5_000, `max latency ${report.maxLatencyMs} ms`);
    assert.ok(report.p99LatencyMs > 0 && report.p99LatencyMs <= report.maxLatencyMs);
    assert.ok(Date.parse(report.stoppedAt) >= Date.parse(report.startedAt) + 2_500, 'ran until the stop, not before');

    // Heartbeats: about one a second, with progress.
    assert.ok(beats.length >= 2, `${beats.length} heartbeats`);
    const last = beats[beats.length - 1]!;
    assert.ok(last.sent > 0 && last.acked > 0 && last.errors === 0, JSON.stringify({ ...last, startOffsets: undefined }));

    // What the canary counted is what is in the topic: read it independently.
    const found = await readTopic(kafka, admin, QUIET_TOPIC, canaryId);
    assert.equal(found.numbered, report.sent);
    assert.equal(found.stops, 1);
  });

  it(`while broker ${RESTARTED_BROKER} restarts: no acknowledged message is lost`, async () => {
    await waitForClusterHealthy(admin, 300_000);
    await ensureCanaryTopic(admin, ROLL_TOPIC, 3);
    await waitForLeaders(admin, [ROLL_TOPIC], 60_000);
    // A canary whose partition the restarted broker leads, so the restart moves its leader.
    const canaryId = await canaryIdLedBy(admin, ROLL_TOPIC, RESTARTED_BROKER, `test-roll-${run}`);
    const env = mockEnv();
    const running = env.run(activities.runKafkaCanary, { canaryId, topic: ROLL_TOPIC }) as Promise<CanaryReport>;
    running.catch(() => undefined);

    let restartMs: number;
    try {
      try {
        await sleep(1_500);
        const t = Date.now();
        await restartBroker(RESTARTED_BROKER);
        restartMs = Date.now() - t;
        await sleep(2_000);
      } finally {
        await ensureBrokerUp(admin, RESTARTED_BROKER);
      }
      await mockEnv().run(activities.stopKafkaCanary, { canaryId, topic: ROLL_TOPIC });
    } catch (err) {
      env.cancel(); // never leave a canary running behind a failed test
      throw err;
    }
    const report = await withTimeout(running, 180_000, 'the canary to end after the stop marker', () => env.cancel());
    console.log(`# canary across a restart of broker ${RESTARTED_BROKER} (restart took ${restartMs} ms): ${summary(report)}`);
    await waitForClusterHealthy(admin, 300_000);

    assert.ok(report.acknowledged > 0, `acknowledged ${report.acknowledged}`);
    assert.equal(report.acknowledged + report.produceErrors, report.sent, 'every send is acknowledged or given up on');
    assert.equal(report.consumerCaughtUp, true);
    assert.equal(report.ackedMissing, 0, `missing: ${report.missingSample.join(', ')}`);
    assert.ok(report.consumed >= report.acknowledged);
    const found = await readTopic(kafka, admin, ROLL_TOPIC, canaryId);
    assert.equal(found.numbered, report.consumed + report.duplicates, 'the canary read what the topic holds');
  });

  it('a cancelled canary throws the cancellation and deletes its consumer group', async () => {
    const canaryId = `test-cancel-${run}`;
    const env = mockEnv();
    let sent = 0;
    env.on('heartbeat', (d: CanaryHeartbeat) => (sent = d.sent));
    const running = env.run(activities.runKafkaCanary, { canaryId, topic: CANCEL_TOPIC }) as Promise<CanaryReport>;
    running.catch(() => undefined);
    const deadline = Date.now() + 60_000;
    while (sent < 10 && Date.now() < deadline) await sleep(100);
    assert.ok(sent >= 10, 'the canary produced before the cancellation');
    const groupsWhileRunning = (await admin.listGroups()).groups.filter((g) => g.groupId.startsWith(`${CANARY_GROUP_PREFIX}${canaryId}-`));
    assert.equal(groupsWhileRunning.length, 1, 'its consumer group exists while it runs');
    env.cancel();
    await assert.rejects(withTimeout(running, 60_000, 'the cancelled canary to end'), (err: Error) => {
      assert.equal(err.name, 'CancelledFailure', `${err.name}: ${err.message}`);
      return true;
    });
    const groupsAfter = (await admin.listGroups()).groups.filter((g) => g.groupId.startsWith(`${CANARY_GROUP_PREFIX}${canaryId}-`));
    assert.deepEqual(groupsAfter, []);
  });

  it('refuses a bad canary id without retrying', async () => {
    await assert.rejects(mockEnv().run(activities.stopKafkaCanary, { canaryId: 'has space' }), (err: Error & { nonRetryable?: boolean }) => {
      assert.match(err.message, /canaryId/);
      assert.equal(err.nonRetryable, true);
      return true;
    });
  });
});

function summary(r: CanaryReport): string {
  return (
    `sent ${r.sent}, acknowledged ${r.acknowledged}, produceErrors ${r.produceErrors}, retries ${r.retries}, ` +
    `maxLatency ${r.maxLatencyMs} ms, p99 ${r.p99LatencyMs} ms, consumed ${r.consumed}, ackedMissing ${r.ackedMissing}, ` +
    `duplicates ${r.duplicates}, unackedButConsumed ${r.unackedButConsumed}, caughtUp ${r.consumerCaughtUp}`
  );
}

function mockEnv(): MockActivityEnvironment {
  return new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          onTimeout?.();
          reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every configured broker in the metadata and every partition's ISR equal to its replicas. */
async function waitForClusterHealthy(admin: Admin, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const { brokers } = await admin.describeCluster();
      const topics = await admin.listTopics();
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      const urp = meta.flatMap((t) => t.partitions.filter((p) => p.isr.length !== p.replicas.length).map((p) => `${t.name}/${p.partitionId}`));
      if (brokers.length === 3 && urp.length === 0) return;
      last = `${brokers.length} brokers, ${urp.length} under-replicated (${urp.slice(0, 5).join(', ')})`;
    } catch (err) {
      last = String(err);
    }
    await sleep(1_000);
  }
  throw new Error(`cluster not healthy after ${timeoutMs / 1000} s: ${last}`);
}

/**
 * The topic's partitions and min.insync.replicas. A broker can lag behind on a just-created topic
 * (UNKNOWN_TOPIC_OR_PARTITION) while others restart it: retried with a fresh admin, which may ask
 * another broker.
 */
async function topicFacts(kafka: Kafka, topic: string): Promise<{ partitions: PartitionMetadata[]; minInsync: string | undefined }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['min.insync.replicas'] }],
      });
      return {
        partitions: meta.topics[0]!.partitions,
        minInsync: configs.resources[0]!.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue,
      };
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(1_000);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/** Starts the broker if a failed restart left it down. */
async function ensureBrokerUp(admin: Admin, id: number): Promise<void> {
  const inMetadata = async () => (await admin.describeCluster()).brokers.some((b) => b.nodeId === id);
  if (await inMetadata().catch(() => false)) return;
  await sleep(5_000);
  if (await inMetadata().catch(() => false)) return;
  await startBroker(id);
}

/** A canary id whose messages (key = canary id) land in a partition that `brokerId` leads. */
async function canaryIdLedBy(admin: Admin, topic: string, brokerId: number, base: string): Promise<string> {
  const { topics } = await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicMetadata({ topics: [topic] }));
  const partitionMetadata = topics[0]!.partitions;
  const partitioner = Partitioners.DefaultPartitioner();
  for (let i = 0; i < 100; i++) {
    const canaryId = `${base}-${i}`;
    const partition = partitioner({ topic, partitionMetadata, message: { key: canaryId, value: null } });
    if (partitionMetadata.find((p) => p.partitionId === partition)?.leader === brokerId) return canaryId;
  }
  console.log(`# no partition of ${topic} is led by broker ${brokerId}; the canary's leader stays put`);
  return base;
}

/** Reads the whole topic with a throw-away consumer and counts this canary's messages. */
async function readTopic(kafka: Kafka, admin: Admin, topic: string, canaryId: string): Promise<{ numbered: number; stops: number }> {
  const highs = await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsets(topic));
  const groupId = `ballast-test-canarycheck-${run}-${randomBytes(3).toString('hex')}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const position = new Map<number, bigint>();
  let numbered = 0;
  let stops = 0;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const offset = BigInt(message.offset);
        if (offset < (position.get(partition) ?? 0n)) return;
        position.set(partition, offset + 1n);
        if (message.key?.toString() !== canaryId) return;
        const value = JSON.parse(message.value!.toString()) as { stop?: boolean; seq?: number };
        if (value.stop) stops += 1;
        else if (typeof value.seq === 'number') numbered += 1;
      },
    });
    const done = () => highs.every((h) => (position.get(h.partition) ?? BigInt(h.low)) >= BigInt(h.high));
    const deadline = Date.now() + 60_000;
    while (!done() && Date.now() < deadline) await sleep(200);
    assert.ok(done(), 'the check read the whole topic');
  } finally {
    await consumer.disconnect();
    for (let i = 0; i < 20; i++) {
      const deleted = await admin.deleteGroups([groupId]).then(() => true, () => false);
      if (deleted) break;
      await sleep(250);
    }
  }
  return { numbered, stops };
}
