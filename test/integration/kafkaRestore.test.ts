import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { DeleteObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { ConfigResourceTypes, type Admin, type IHeaders, type Kafka } from 'kafkajs';
import { backupPrefix } from '../../activities/storage/backupObjects';
import { createKafkaBackupActivities } from '../../activities/kafka/backup';
import { decodeMessageLine, topicConfigOverrides } from '../../activities/kafka/backupFormat';
import { createKafkaRestoreActivities, type KafkaRestoreHeartbeat } from '../../activities/kafka/restore';
import { backupIndex, clampNote, restoredGroupOffset } from '../../activities/kafka/restoreOffsets';
import type { KafkaRestoreRequest } from '../../activities/kafka/restoreRequest';
import { topicsOnEachBroker } from '../../activities/kafka/protocolRequests';
import { createTopicsAndWait, retryOnLeaderChange } from '../../activities/kafka/topics';
import { loadConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';
import type { BackupPiece, ComponentResult } from '../../contracts/backupTypes';
import type { RestoreStepResult, VerifyResult } from '../../contracts/restoreTypes';
import { listAllKeys, objectBytes } from '../helpers/backupBucket';

// ---------------------------------------------------------------------------------------------
// The pure offset translation

describe('restoredGroupOffset', () => {
  const range = { lowOffset: '10', highOffset: '100', messages: 90 };

  it('translates an offset of a restored partition to the same position in the restored messages', () => {
    assert.deepEqual(restoredGroupOffset({ savedOffset: '40', data: { range }, targetLow: '0', targetHigh: '90' }), {
      offset: '30',
      wanted: '30',
      clamped: false,
    });
    // Restored into a partition whose log starts at 500: index 30 becomes 530.
    assert.equal(restoredGroupOffset({ savedOffset: '40', data: { range }, targetLow: '500', targetHigh: '590' }).offset, '530');
    // The end of the backup maps to the end of the restored data.
    assert.deepEqual(restoredGroupOffset({ savedOffset: '100', data: { range }, targetLow: '0', targetHigh: '90' }), {
      offset: '90',
      wanted: '90',
      clamped: false,
    });
  });

  it('clamps to the target log range, below and above', () => {
    // Committed below the backup's low (those messages were already deleted): the restored start.
    assert.deepEqual(restoredGroupOffset({ savedOffset: '4', data: { range }, targetLow: '0', targetHigh: '90' }), {
      offset: '0',
      wanted: '-6',
      clamped: true,
    });
    // Only 80 of the 90 restored (partial): past the end is clamped to the high.
    assert.deepEqual(restoredGroupOffset({ savedOffset: '100', data: { range }, targetLow: '0', targetHigh: '80' }), {
      offset: '80',
      wanted: '90',
      clamped: true,
    });
  });

  it('keeps the saved offset where no data was restored, clamped into the target', () => {
    assert.deepEqual(restoredGroupOffset({ savedOffset: '120', targetLow: '0', targetHigh: '200' }), { offset: '120', wanted: '120', clamped: false });
    const r = restoredGroupOffset({ savedOffset: '120', targetLow: '0', targetHigh: '80' });
    assert.deepEqual(r, { offset: '80', wanted: '120', clamped: true });
    assert.equal(clampNote('g', 't', 3, '120', r, '0', '80'), 'group g topic t partition 3: saved 120, clamped to 80 (log range 0..80)');
    assert.equal(
      clampNote('g', 't', 0, '4', restoredGroupOffset({ savedOffset: '4', data: { range }, targetLow: '0', targetHigh: '90' }), '0', '90'),
      'group g topic t partition 0: saved 4 (translated -6), clamped to 0 (log range 0..90)',
    );
  });

  it('counts messages below the offset on a piece with gaps (transactions), and works beyond 2^53', () => {
    const gapped = { lowOffset: '0', highOffset: '53', messages: 40 };
    assert.equal(backupIndex(gapped, 40n, 28), 28n);
    assert.throws(() => backupIndex(gapped, 40n), /messagesBelow/);
    assert.equal(backupIndex(gapped, 53n), 40n, 'the end needs no count');
    assert.equal(backupIndex(gapped, 60n), 47n, 'past the end stays past the end');
    assert.equal(restoredGroupOffset({ savedOffset: '40', data: { range: gapped, messagesBelow: 28 }, targetLow: '0', targetHigh: '40' }).offset, '28');
    const big = { lowOffset: '9007199254740993', highOffset: '9007199254741093', messages: 100 };
    assert.equal(
      restoredGroupOffset({ savedOffset: '9007199254741000', data: { range: big }, targetLow: '9007199254740000', targetHigh: '9007199254740100' }).offset,
      '9007199254740007',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The real stack: back up a topic and a group of the test's own, destroy them, restore them

const run = randomBytes(4).toString('hex');
const TOPIC = `ballast-test-krestore-${run}`;
const NODATA_TOPIC = `ballast-test-krestore-nodata-${run}`;
const GROUP = `ballast-test-krestore-group-${run}`;
const BACKUP_ID = `test-krestore-${run}`;
const PARTITIONS = 4;
const TX_PARTITION = 3;
const RETENTION_MS = '604800000';
const MAX_MESSAGE_BYTES = '2000000';
const BASE_TIME = Date.now() - 3_600_000;
const SUFFIXES = ['', '_drill', '_resume', '_busy'];

interface Expected {
  key: string | null;
  value: string | null;
  headers: Record<string, string | null | (string | null)[]>;
  timestamp: string;
}

const b64 = (v: Buffer | string | null | undefined) => (v === null || v === undefined ? null : Buffer.from(v).toString('base64'));
const normHeaders = (headers: IHeaders | undefined) =>
  Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k, Array.isArray(v) ? v.map((x) => b64(x)) : b64(v)]));

describe('kafka restore activities on the real stack', () => {
  const loaded = loadConfig();
  const connections = createConnections(loaded.config, loaded.path);
  const bucket = loaded.config.objectStore.backupBucket;
  const backups = createKafkaBackupActivities({ config: loaded.config, connections });
  const restores = createKafkaRestoreActivities({ config: loaded.config, connections });
  let kafka: Kafka;
  let s3: S3Client;
  // kafkajs puts every topic a client has looked at into its later metadata requests, so once a
  // topic it knew is deleted, every later call of that client fails with UNKNOWN_TOPIC_OR_PARTITION.
  // This test deletes topics on purpose: each admin call gets a client of its own.
  const admin = new Proxy({} as Admin, {
    get:
      (_target, method: keyof Admin) =>
      async (...args: unknown[]) => {
        const a = kafka.admin();
        await a.connect();
        try {
          // Calls on one topic (setOffsets, deleteTopicRecords) need its metadata loaded first.
          const topic = (args[0] as { topic?: unknown } | undefined)?.topic;
          if (typeof topic === 'string') await a.fetchTopicMetadata({ topics: [topic] });
          return await (a[method] as (...x: unknown[]) => Promise<unknown>)(...args);
        } finally {
          await a.disconnect();
        }
      },
  });
  const expected = new Map<number, Expected[]>();
  let metadata: BackupPiece;
  let topicPieces: BackupPiece[];
  let readers = 0;

  const request = (suffix: string, topics = [TOPIC, NODATA_TOPIC]): KafkaRestoreRequest => ({ backupId: BACKUP_ID, metadata, topicPieces, suffix, topics });

  before(async () => {
    kafka = connections.kafka();
    s3 = connections.s3();
    await createTopicsAndWait(admin, [
      {
        topic: TOPIC,
        numPartitions: PARTITIONS,
        replicationFactor: 3,
        configEntries: [
          { name: 'retention.ms', value: RETENTION_MS },
          { name: 'max.message.bytes', value: MAX_MESSAGE_BYTES },
        ],
      },
      { topic: NODATA_TOPIC, numPartitions: 2, replicationFactor: 3 },
    ]);
    for (let p = 0; p < PARTITIONS; p++) expected.set(p, []);

    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      // Partitions 0..2: keyed messages with headers (text, binary, repeated), null keys and values.
      const counts = [100, 120, 60];
      for (const [partition, count] of counts.entries()) {
        const messages = Array.from({ length: count }, (_, i) => {
          const key = i % 9 === 0 ? null : `key-${partition}-${i}`;
          const value = i % 13 === 5 ? null : `value ${partition}/${i} ${'x'.repeat(i % 40)}`;
          const headers: IHeaders = { seq: String(i) };
          if (i % 4 === 0) headers.bin = Buffer.from([0, 255, i % 256]);
          if (i % 10 === 0) headers.multi = ['a', Buffer.from('b')];
          const timestamp = String(BASE_TIME + partition * 100_000 + i);
          expected.get(partition)!.push({ key: b64(key), value: b64(value), headers: normHeaders(headers), timestamp });
          return { partition, key, value, headers, timestamp };
        });
        await producer.send({ topic: TOPIC, acks: -1, messages });
      }
      await producer.send({
        topic: NODATA_TOPIC,
        acks: -1,
        messages: [
          ...Array.from({ length: 150 }, (_, i) => ({ partition: 0, key: `n${i}`, value: 'no data backed up' })),
          ...Array.from({ length: 80 }, (_, i) => ({ partition: 1, key: `n${i}`, value: 'no data backed up' })),
        ],
      });
    } finally {
      await producer.disconnect();
    }

    // Partition 3: committed, aborted, committed transactions: offsets 0..19, marker 20, aborted
    // 21..30, marker 31, 32..51, marker 52. Restored, it holds 40 messages at offsets 0..39.
    const tx = kafka.producer({ transactionalId: `ballast-test-krestore-tx-${run}`, idempotent: true, maxInFlightRequests: 1 });
    await tx.connect();
    try {
      let n = 0;
      for (const [count, commit] of [
        [20, true],
        [10, false],
        [20, true],
      ] as [number, boolean][]) {
        const t = await tx.transaction();
        const messages = Array.from({ length: count }, () => {
          const i = n++;
          return { partition: TX_PARTITION, key: `tx-${i}`, value: `tx value ${i}`, headers: { tx: 'yes' }, timestamp: String(BASE_TIME + 900_000 + i) };
        });
        await t.send({ topic: TOPIC, messages });
        if (commit) {
          await t.commit();
          for (const m of messages) expected.get(TX_PARTITION)!.push({ key: b64(m.key), value: b64(m.value), headers: normHeaders(m.headers), timestamp: m.timestamp });
        } else {
          await t.abort();
        }
      }
    } finally {
      await tx.disconnect();
    }

    // The log of partition 0 starts at 10 (records deleted): backup offsets are not restore offsets.
    await retryOnLeaderChange(admin, [TOPIC], () => admin.deleteTopicRecords({ topic: TOPIC, partitions: [{ partition: 0, offset: '10' }] }));
    expected.set(0, expected.get(0)!.slice(10));

    // The group: partition 0 mid-way, 1 at the end, 2 never committed, 3 inside the second
    // committed transaction; on the topic without backed-up data, 120 and 50.
    await retryOnLeaderChange(admin, [TOPIC], () =>
      admin.setOffsets({
        groupId: GROUP,
        topic: TOPIC,
        partitions: [
          { partition: 0, offset: '40' },
          { partition: 1, offset: '120' },
          { partition: 3, offset: '40' },
        ],
      }),
    );
    await retryOnLeaderChange(admin, [NODATA_TOPIC], () =>
      admin.setOffsets({
        groupId: GROUP,
        topic: NODATA_TOPIC,
        partitions: [
          { partition: 0, offset: '120' },
          { partition: 1, offset: '50' },
        ],
      }),
    );

    // Every broker must list the new topics before the metadata backup reads them from whichever
    // broker answers: each broker is asked on its own until all of them do.
    for (const deadline = Date.now() + 60_000; ; ) {
      const lists = await topicsOnEachBroker(loaded.config.kafka.brokers, 5_000);
      if (lists.every((list) => [TOPIC, NODATA_TOPIC].every((t) => list?.includes(t)))) break;
      if (Date.now() > deadline) throw new Error('the new topics are not listed by every broker after 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }

    // The real backup activities.
    const meta: ComponentResult = await mockEnv().run(backups.backupKafkaMetadata, { backupId: BACKUP_ID });
    metadata = meta.pieces[0]!;
    const data: ComponentResult = await mockEnv().run(backups.backupKafkaTopicData, { backupId: BACKUP_ID, topic: TOPIC });
    topicPieces = data.pieces;
    assert.deepEqual(
      topicPieces.map((p) => p.messages),
      [0, 1, 2, 3].map((p) => expected.get(p)!.length),
    );
  });

  after(async () => {
    try {
      const topics = SUFFIXES.flatMap((s) => [TOPIC + s, NODATA_TOPIC + s]);
      const existing = new Set(await admin.listTopics());
      const left = topics.filter((t) => existing.has(t));
      if (left.length) await admin.deleteTopics({ topics: left }).catch(() => undefined);
      const groups = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
      const mine = [...SUFFIXES.map((s) => GROUP + s), ...Array.from({ length: readers }, (_, i) => readerGroup(i))].filter((g) => groups.has(g));
      if (mine.length) await admin.deleteGroups(mine).catch(() => undefined);
      const keys = await listAllKeys(s3, bucket, backupPrefix(BACKUP_ID));
      for (let i = 0; i < keys.length; i += 1000) {
        await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) } }));
      }
    } finally {
      s3.destroy();
    }
  });

  function readerGroup(i: number): string {
    return `ballast-test-krestore-reader-${run}-${i}`;
  }

  /** Every message of a topic, per partition, read with a throw-away group (deleted after). */
  async function readTopic(topic: string): Promise<Map<number, Expected[]>> {
    const offsets = await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsets(topic));
    const total = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
    const got = new Map<number, Expected[]>(offsets.map((o) => [o.partition, []]));
    const groupId = readerGroup(readers++);
    const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      let seen = 0;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`read ${seen} of ${total} messages of ${topic} in 60 s`)), 60_000);
        if (total === 0) {
          clearTimeout(timer);
          resolve();
          return;
        }
        consumer
          .run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              got.get(partition)!.push({
                key: b64(message.key),
                value: b64(message.value),
                headers: normHeaders(message.headers),
                timestamp: message.timestamp,
              });
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
    }
    for (let i = 0; i < 20; i++) {
      try {
        await admin.deleteGroups([groupId]);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    return got;
  }

  async function committed(groupId: string, topic: string): Promise<Record<number, string>> {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return Object.fromEntries((t?.partitions ?? []).filter((p) => p.offset !== '-1').map((p) => [p.partition, p.offset]));
  }

  async function topicConfigs(topic: string): Promise<Record<string, string | null>> {
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] });
    return topicConfigOverrides(described.resources[0]!.configEntries);
  }

  async function partitionCounts(topic: string): Promise<Record<number, number>> {
    const offsets = await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsets(topic));
    return Object.fromEntries(offsets.map((o) => [o.partition, Number(o.high) - Number(o.low)]));
  }

  /** Until no broker lists the topics: each learns of a deletion in its own time. */
  async function waitUntilGone(topics: string[]): Promise<void> {
    for (let i = 0; i < 300; i++) {
      const answers = await topicsOnEachBroker(loaded.config.kafka.brokers, 5_000);
      if (answers.every((listed) => listed !== undefined && !topics.some((t) => listed.includes(t)))) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`topics ${topics.join(', ')} still listed by a broker`);
  }

  async function myTopics(): Promise<string[]> {
    return (await admin.listTopics()).filter((t) => t.includes(run)).sort();
  }

  const expectedCounts = () => Object.fromEntries([0, 1, 2, 3].map((p) => [p, expected.get(p)!.length]));

  describe('bad input fails before any change', () => {
    const rejectsInvalid = async (promise: Promise<unknown>, field: RegExp) =>
      assert.rejects(promise, (err: Error & { nonRetryable?: boolean; type?: string }) => {
        assert.equal(err.name, 'ApplicationFailure', err.message);
        assert.equal(err.nonRetryable, true);
        assert.equal(err.type, 'InvalidInput');
        assert.match(err.message, field);
        return true;
      });

    it('refuses a bad suffix, a suffix making an invalid name, a foreign metadata key, an unknown topic', async () => {
      const before = await myTopics();
      await rejectsInvalid(mockEnv().run(restores.restoreKafka, request('bad suffix!')), /suffix: "bad suffix!"/);
      await rejectsInvalid(mockEnv().run(restores.restoreKafka, request('x'.repeat(220))), /suffix: topic .* is not a valid Kafka topic name/);
      await rejectsInvalid(
        mockEnv().run(restores.restoreKafka, { ...request('_x'), metadata: { ...metadata, key: 'backups/someone-else/kafka/metadata.json' } }),
        /metadata: key .* is not under backups\/test-krestore-/,
      );
      await rejectsInvalid(mockEnv().run(restores.restoreKafka, { ...request('_x'), backupId: '../x' }), /backupId/);
      await rejectsInvalid(mockEnv().run(restores.restoreKafka, { ...request('_x'), backupId: '' }), /backupId/);
      await rejectsInvalid(mockEnv().run(restores.restoreKafka, request('_x', [`no-such-topic-${run}`])), /topics: "no-such-topic-/);
      await rejectsInvalid(mockEnv().run(restores.verifyKafka, request('bad/suffix')), /suffix/);
      assert.deepEqual(await myTopics(), before, 'no topic created');
      assert.deepEqual(await committed(`${GROUP}_x`, `${TOPIC}_x`).catch(() => ({})), {});
    });

    it('refuses to delete restore targets with an empty suffix (that would delete production)', async () => {
      await rejectsInvalid(mockEnv().run(restores.deleteKafkaRestoreTargets, { metadata, suffix: '', topics: [TOPIC, NODATA_TOPIC] }), /suffix: refusing/);
      await rejectsInvalid(mockEnv().run(restores.deleteKafkaRestoreTargets, { metadata, suffix: '' }), /suffix: refusing/);
      assert.ok((await admin.listTopics()).includes(TOPIC), 'topic still there');
      assert.equal((await committed(GROUP, TOPIC))[0], '40', 'group still there');
    });

    it('fails retryably, naming the group, when a target group has active members, before creating anything', async () => {
      const consumer = kafka.consumer({ groupId: `${GROUP}_busy`, allowAutoTopicCreation: false, maxWaitTimeInMs: 100 });
      await consumer.connect();
      try {
        await consumer.subscribe({ topics: [TOPIC], fromBeginning: false });
        const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
        await consumer.run({ autoCommit: false, eachMessage: async () => undefined });
        await joined;
        await assert.rejects(mockEnv().run(restores.restoreKafka, request('_busy')), (err: Error & { nonRetryable?: boolean; type?: string }) => {
          assert.equal(err.type, 'GroupHasActiveMembers', err.message);
          assert.equal(err.nonRetryable, false);
          assert.ok(err.message.includes(`"${GROUP}_busy"`), err.message);
          return true;
        });
        assert.equal((await admin.listTopics()).includes(`${TOPIC}_busy`), false, 'no topic created');
      } finally {
        await consumer.disconnect();
      }
    });
  });

  describe('restore under the original names after the topic and group were lost', () => {
    let result: RestoreStepResult;
    const heartbeats: KafkaRestoreHeartbeat[] = [];

    before(async () => {
      await admin.deleteGroups([GROUP]);
      await admin.deleteTopics({ topics: [TOPIC] });
      await waitUntilGone([TOPIC]);
      const env = mockEnv();
      env.on('heartbeat', (d: KafkaRestoreHeartbeat) => heartbeats.push(structuredClone(d)));
      result = await env.run(restores.restoreKafka, request(''));
    });

    it('recreates the topic with its partitions, replication and config overrides', async () => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [TOPIC] });
      assert.equal(topics[0]!.partitions.length, PARTITIONS);
      for (const p of topics[0]!.partitions) assert.equal(p.replicas.length, 3);
      assert.deepEqual(await topicConfigs(TOPIC), { 'max.message.bytes': MAX_MESSAGE_BYTES, 'retention.ms': RETENTION_MS });
      assert.equal(result.component, 'kafka');
      assert.equal(result.unit, 'kafka');
      assert.equal(result.messages, [...expected.values()].reduce((n, e) => n + e.length, 0));
      assert.ok(result.bytes >= topicPieces.reduce((n, p) => n + p.size, 0), `bytes ${result.bytes}`);
      assert.ok(result.durationMs > 0);
      assert.deepEqual(result.notes, [], 'nothing clamped, skipped or capped');
    });

    it('restores every message (key, value, headers, timestamp) in order per partition, nothing twice', async () => {
      assert.deepEqual(await partitionCounts(TOPIC), expectedCounts());
      const got = await readTopic(TOPIC);
      for (let p = 0; p < PARTITIONS; p++) assert.deepEqual(got.get(p), expected.get(p), `partition ${p}`);
    });

    it('restores the group with translated offsets; the topic without data keeps the saved ones', async () => {
      // p0: 40 - low 10 = 30; p1: the end, 120; p3: 20 + 8 committed messages below offset 40 = 28.
      assert.deepEqual(await committed(GROUP, TOPIC), { 0: '30', 1: '120', 3: '28' });
      assert.deepEqual(await committed(GROUP, NODATA_TOPIC), { 0: '120', 1: '50' });
    });

    it('records which partitions it owns before producing, and every one filled at the end', () => {
      const keys = [0, 1, 2, 3].map((p) => `${TOPIC}/${p}`);
      const first = heartbeats.find((h) => Object.keys(h.owned).length === PARTITIONS);
      assert.ok(first, 'ownership heartbeated');
      assert.equal(first.messages, 0, 'before any message was produced');
      assert.deepEqual(first.createdTopics, [TOPIC]);
      const last = heartbeats.at(-1)!;
      assert.equal(last.phase, 'done');
      assert.deepEqual([...last.filled].sort(), keys);
      assert.deepEqual(last.owned, Object.fromEntries(keys.map((k) => [k, '0'])));
    });

    it('verifies ok, with exact message counts and group offsets', async () => {
      const v: VerifyResult = await mockEnv().run(restores.verifyKafka, request(''));
      assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c) => !c.ok)));
      const messages = v.checks.find((c) => c.name === `topic ${TOPIC}: messages (at least the backup's)`);
      const total = [...expected.values()].reduce((n, e) => n + e.length, 0);
      assert.equal(total, 90 + 120 + 60 + 40);
      assert.deepEqual(messages && [messages.expected, messages.actual], [total, total]);
      assert.equal(v.checks.filter((c) => c.name.startsWith(`group ${GROUP} `)).length, 5);
      assert.ok(v.checks.some((c) => c.name === `topic ${NODATA_TOPIC}: partitions` && c.ok));
    });

    it('verification reports a failing check when a message is missing', async () => {
      await retryOnLeaderChange(admin, [TOPIC], () => admin.deleteTopicRecords({ topic: TOPIC, partitions: [{ partition: 1, offset: '1' }] }));
      const v: VerifyResult = await mockEnv().run(restores.verifyKafka, request(''));
      assert.equal(v.ok, false);
      const failing = v.checks.filter((c) => !c.ok);
      assert.deepEqual(
        failing.map((c) => [c.name, c.expected, c.actual]),
        [
          [`topic ${TOPIC}: messages (at least the backup's)`, 310, 309],
          [`topic ${TOPIC} partition 1: messages (at least the backup's)`, 120, 119],
        ],
      );
    });

    it('a second restore leaves the filled topic alone, noting every partition it did not append to', async () => {
      const again: RestoreStepResult = await mockEnv().run(restores.restoreKafka, request('', [TOPIC]));
      assert.equal(again.messages, 0);
      assert.equal(again.notes.filter((n) => /not empty .* and not filled by this restore/.test(n)).length, PARTITIONS, again.notes.join('\n'));
      assert.deepEqual(await partitionCounts(TOPIC), { ...expectedCounts(), 1: 119 }, 'nothing appended');
    });
  });

  describe('restore beside production (a drill suffix), verify, tear down', () => {
    const suffix = '_drill';
    let result: RestoreStepResult;

    before(async () => {
      result = await mockEnv().run(restores.restoreKafka, request(suffix));
    });

    it('restores the suffixed topic and group next to the originals', async () => {
      assert.deepEqual(await partitionCounts(TOPIC + suffix), expectedCounts());
      const got = await readTopic(TOPIC + suffix);
      for (let p = 0; p < PARTITIONS; p++) assert.deepEqual(got.get(p), expected.get(p), `partition ${p}`);
      assert.deepEqual(await committed(GROUP + suffix, TOPIC + suffix), { 0: '30', 1: '120', 3: '28' });
      assert.deepEqual(await topicConfigs(TOPIC + suffix), { 'max.message.bytes': MAX_MESSAGE_BYTES, 'retention.ms': RETENTION_MS });
    });

    it('clamps offsets on a topic restored without data into a fresh empty topic, and notes each', async () => {
      assert.deepEqual(await partitionCounts(NODATA_TOPIC + suffix), { 0: 0, 1: 0 });
      assert.deepEqual(await committed(GROUP + suffix, NODATA_TOPIC + suffix), { 0: '0', 1: '0' });
      assert.deepEqual(result.notes, [
        `group ${GROUP}${suffix} topic ${NODATA_TOPIC}${suffix} partition 0: saved 120, clamped to 0 (log range 0..0)`,
        `group ${GROUP}${suffix} topic ${NODATA_TOPIC}${suffix} partition 1: saved 50, clamped to 0 (log range 0..0)`,
      ]);
    });

    it('verifies ok', async () => {
      const v: VerifyResult = await mockEnv().run(restores.verifyKafka, request(suffix));
      assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c) => !c.ok)));
      const nodata = v.checks.find((c) => c.name === `group ${GROUP}${suffix} topic ${NODATA_TOPIC}${suffix} partition 0: committed offset`);
      assert.deepEqual(nodata && [nodata.expected, nodata.actual, nodata.ok], ['0', '0', true]);
      // The restore workflow verifies with the metadata piece alone (no backupId): same checks.
      const fromKey: VerifyResult = await mockEnv().run(restores.verifyKafka, { ...request(suffix), backupId: '' });
      assert.deepEqual(fromKey, v);
    });

    it('teardown deletes exactly the suffixed topics and group', async () => {
      const deleted = await mockEnv().run(restores.deleteKafkaRestoreTargets, { metadata, suffix, topics: [TOPIC, NODATA_TOPIC] });
      assert.deepEqual(deleted, { topics: [NODATA_TOPIC + suffix, TOPIC + suffix].sort(), groups: [GROUP + suffix] });
      await waitUntilGone([TOPIC + suffix, NODATA_TOPIC + suffix]);
      const listed = new Set(await admin.listTopics());
      assert.ok(listed.has(TOPIC) && listed.has(NODATA_TOPIC), 'originals kept');
      const groups = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
      assert.equal(groups.has(GROUP + suffix), false);
      assert.equal(groups.has(GROUP), true, 'original group kept');
      // Already gone: nothing to delete, no error.
      assert.deepEqual(await mockEnv().run(restores.deleteKafkaRestoreTargets, { metadata, suffix, topics: [TOPIC, NODATA_TOPIC] }), { topics: [], groups: [] });
    });
  });

  describe('a retried attempt resumes a partly filled partition', () => {
    const suffix = '_resume';
    const target = TOPIC + suffix;
    const K = 37;
    let result: RestoreStepResult;

    before(async () => {
      await createTopicsAndWait(admin, [{ topic: target, numPartitions: PARTITIONS, replicationFactor: 3 }]);
      // The first attempt got K messages of partition 1 in before its worker died; partition 2
      // has someone else's messages, which the restore must not append to.
      const piece = topicPieces[1]!;
      const lines = gunzipSync(await objectBytes(s3, bucket, piece.key)).toString('utf8').split('\n').filter(Boolean);
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      await producer.connect();
      try {
        await producer.send({
          topic: target,
          acks: -1,
          messages: lines.slice(0, K).map((line) => {
            const m = decodeMessageLine(line);
            return { partition: 1, key: m.key, value: m.value, headers: m.headers as unknown as IHeaders, timestamp: m.timestamp };
          }),
        });
        await producer.send({ topic: target, acks: -1, messages: Array.from({ length: 5 }, (_, i) => ({ partition: 2, value: `foreign ${i}` })) });
      } finally {
        await producer.disconnect();
      }
      const heartbeatDetails: KafkaRestoreHeartbeat = {
        phase: 'data',
        createdTopics: [],
        owned: { [`${target}/1`]: '0' },
        filled: [],
        messages: K,
        bytes: 0,
      };
      result = await mockEnv({ attempt: 2, heartbeatDetails }).run(restores.restoreKafka, request(suffix, [TOPIC]));
    });

    it('produces only the rest of the partly filled partition: no duplicates', async () => {
      const counts = await partitionCounts(target);
      assert.deepEqual(counts, { 0: expected.get(0)!.length, 1: 120, 2: 5, 3: expected.get(3)!.length });
      const got = await readTopic(target);
      assert.deepEqual(got.get(1), expected.get(1));
      assert.deepEqual(got.get(0), expected.get(0));
      assert.equal(result.resumed, true);
      assert.equal(result.messages, K + (120 - K) + expected.get(0)!.length + expected.get(3)!.length);
      assert.ok(result.notes.includes(`topic ${target} partition 1: resumed after ${K} messages restored by an earlier attempt`), result.notes.join('\n'));
    });

    it("skips someone else's non-empty partition with a note, and keeps that group offset untranslated", async () => {
      assert.ok(
        result.notes.some((n) => n.startsWith(`topic ${target} partition 2: not empty (log range 0..5) and not filled by this restore: its 60 backed-up messages`)),
        result.notes.join('\n'),
      );
      const got = await readTopic(target);
      assert.deepEqual(got.get(2)!.map((m) => Buffer.from(m.value!, 'base64').toString()), [0, 1, 2, 3, 4].map((i) => `foreign ${i}`));
      assert.deepEqual(await committed(GROUP + suffix, target), { 0: '30', 1: '120', 3: '28' });
      const deleted = await mockEnv().run(restores.deleteKafkaRestoreTargets, { metadata, suffix, topics: [TOPIC] });
      assert.deepEqual(deleted, { topics: [target], groups: [GROUP + suffix] });
    });
  });
});

/** An activity environment whose worker logger keeps quiet about the failures the tests expect. */
function mockEnv(info?: ConstructorParameters<typeof MockActivityEnvironment>[0]): MockActivityEnvironment {
  return new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR') });
}
