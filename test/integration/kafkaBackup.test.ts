import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { Admin, IHeaders, Kafka } from 'kafkajs';
import { backupPrefix, markerKey } from '../../activities/storage/backupObjects';
import { createKafkaBackupActivities, type KafkaTopicHeartbeat } from '../../activities/kafka/backup';
import { BACKUP_GROUP_PREFIX, decodeMessageLine, type KafkaMetadataBackup } from '../../activities/kafka/backupFormat';
import { createTopicsAndWait } from '../../activities/kafka/topics';
import { loadConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';
import type { BackupPiece, ComponentResult } from '../../contracts/backupTypes';

// The real stack (scripts/stack): three Kafka brokers (RF 3, min.insync.replicas 2) and MinIO.
// Everything this test creates has a unique name and is deleted at the end; the seeded topics and
// groups of others are only read.
const run = randomBytes(4).toString('hex');
const TOPIC = `ballast-test-kbackup-${run}`;
const BIG_TOPIC = `ballast-test-kbackup-big-${run}`;
const GROUP = `ballast-test-kbackup-group-${run}`;
const BACKUP_ID = `test-kbackup-${run}`;
const CANCEL_BACKUP_ID = `test-kbackup-cancel-${run}`;
const FRESH_TOPIC = `ballast-test-kbackup-fresh-${run}`;
const FRESH_BACKUP_ID = `test-kbackup-fresh-${run}`;
const PARTITIONS = 5;
const EMPTY_PARTITION = 2;
const TX_PARTITION = 3;
/** Holds only an aborted transaction: records and a marker, nothing a reader sees. */
const ABORTED_PARTITION = 4;
const RETENTION_MS = '86400000';
const MAX_MESSAGE_BYTES = '2000000';
// Recent message timestamps: older ones than retention.ms would be deleted by the broker's next
// retention check, whenever that happens to run during the test.
const BASE_TIME = Date.now() - 3_600_000;

interface Expected {
  key: string | null;
  value: string | null;
  headers: Record<string, string | string[]>;
  timestamp: string;
}

const b64 = (v: Buffer | string | null) => (v === null ? null : Buffer.from(v).toString('base64'));

describe('kafka backup activities on the real stack', () => {
  const loaded = loadConfig();
  const connections = createConnections(loaded.config, loaded.path);
  const bucket = loaded.config.objectStore.backupBucket;
  const activities = createKafkaBackupActivities({ config: loaded.config, connections });
  let kafka: Kafka;
  let admin: Admin;
  let s3: S3Client;
  const expected = new Map<number, Expected[]>();

  before(async () => {
    kafka = connections.kafka();
    admin = kafka.admin();
    s3 = connections.s3();
    await admin.connect();
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
      { topic: BIG_TOPIC, numPartitions: 1, replicationFactor: 3 },
    ]);
    for (let p = 0; p < PARTITIONS; p++) expected.set(p, []);

    // Partitions 0 and 1: plain messages with keys, null keys, null values, binary bytes, and
    // headers (text, binary, a repeated name). Partition 2 stays empty.
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      for (const partition of [0, 1]) {
        const count = partition === 0 ? 1500 : 1200;
        const messages = Array.from({ length: count }, (_, i) => {
          const key = i % 7 === 0 ? null : partition === 1 && i % 5 === 0 ? randomBytes(8) : `key-${partition}-${i}`;
          const value = partition === 1 && i % 11 === 0 ? null : `value ${partition}/${i} ${'x'.repeat(i % 50)}`;
          const headers: IHeaders = {};
          if (i % 3 === 0) headers.trace = `t-${i}`;
          if (i % 4 === 0) headers.bin = Buffer.from([0, 255, i % 256]);
          if (i % 10 === 0) headers.multi = ['a', Buffer.from('b')];
          const timestamp = String(BASE_TIME + partition * 100_000 + i);
          expected.get(partition)!.push({
            key: b64(key),
            value: b64(value),
            headers: Object.fromEntries(
              Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v.map((x) => b64(x)!) : b64(v as Buffer | string)!]),
            ),
            timestamp,
          });
          return { partition, key, value, headers, timestamp };
        });
        for (let i = 0; i < messages.length; i += 500) {
          await producer.send({ topic: TOPIC, acks: -1, messages: messages.slice(i, i + 500) });
        }
      }
    } finally {
      await producer.disconnect();
    }

    // Partition 3: transactions, one aborted, so the log has control records and aborted records:
    // offsets have gaps and the partition ends in a commit marker.
    // The next transaction can be refused with CONCURRENT_TRANSACTIONS while the previous one's
    // markers are still being written (slower on a cluster that just had a broker restarted):
    // retry longer than the connections' default.
    const tx = kafka.producer({
      transactionalId: `ballast-test-kbackup-tx-${run}`,
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 10, initialRetryTime: 300 },
    });
    await tx.connect();
    try {
      const batches: [number, boolean][] = [
        [200, true],
        [50, false],
        [100, true],
      ];
      let n = 0;
      for (const [count, commit] of batches) {
        const t = await tx.transaction();
        const messages = Array.from({ length: count }, () => {
          const i = n++;
          return { partition: TX_PARTITION, key: `tx-${i}`, value: `tx value ${i}`, timestamp: String(BASE_TIME + 900_000 + i) };
        });
        await t.send({ topic: TOPIC, messages });
        if (commit) {
          await t.commit();
          for (const m of messages) expected.get(TX_PARTITION)!.push({ key: b64(m.key), value: b64(m.value), headers: {}, timestamp: m.timestamp });
        } else {
          await t.abort();
        }
      }
      const aborted = await tx.transaction();
      await aborted.send({
        topic: TOPIC,
        messages: Array.from({ length: 40 }, (_, i) => ({ partition: ABORTED_PARTITION, key: `aborted-${i}`, value: 'never seen' })),
      });
      await aborted.abort();
    } finally {
      await tx.disconnect();
    }

    // A consumer group of the test's own, with committed offsets (partition 3 left uncommitted).
    await admin.setOffsets({
      groupId: GROUP,
      topic: TOPIC,
      partitions: [
        { partition: 0, offset: '100' },
        { partition: 1, offset: '7' },
        { partition: 2, offset: '0' },
      ],
    });
  });

  after(async () => {
    try {
      await admin.deleteGroups([GROUP]).catch(() => undefined);
      await admin.deleteTopics({ topics: [TOPIC, BIG_TOPIC, FRESH_TOPIC] }).catch(() => undefined);
      for (const id of [BACKUP_ID, CANCEL_BACKUP_ID, FRESH_BACKUP_ID]) await deletePrefix(s3, bucket, backupPrefix(id));
    } finally {
      await admin.disconnect();
      s3.destroy();
    }
  });

  async function getObject(key: string): Promise<{ bytes: Buffer; lastModified: Date }> {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { bytes: Buffer.from(await object.Body!.transformToByteArray()), lastModified: object.LastModified! };
  }

  async function lastModified(key: string): Promise<number> {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.LastModified!.getTime();
  }

  async function throwAwayGroups(backupId: string): Promise<string[]> {
    const { groups } = await admin.listGroups();
    return groups.map((g) => g.groupId).filter((g) => g.startsWith(`${BACKUP_GROUP_PREFIX}${backupId}-`));
  }

  function checkPieceBytes(piece: BackupPiece, bytes: Buffer): void {
    assert.equal(piece.size, bytes.length, `${piece.name}: size`);
    assert.equal(piece.sha256, createHash('sha256').update(bytes).digest('hex'), `${piece.name}: sha256`);
  }

  describe('backupKafkaMetadata', () => {
    let result: ComponentResult;
    let doc: KafkaMetadataBackup;

    before(async () => {
      result = await mockEnv().run(activities.backupKafkaMetadata, { backupId: BACKUP_ID });
      const piece = result.pieces[0]!;
      const { bytes } = await getObject(piece.key);
      checkPieceBytes(piece, bytes);
      doc = JSON.parse(bytes.toString('utf8')) as KafkaMetadataBackup;
      if (doc.vanishedTopics.length) console.log(`# topics deleted by others during the metadata backup: ${doc.vanishedTopics.join(', ')}`);
    });

    it('returns one complete piece', () => {
      assert.equal(result.component, 'kafka');
      assert.equal(result.resumed, false);
      assert.equal(result.pieces.length, 1);
      const piece = result.pieces[0]!;
      assert.equal(piece.name, 'metadata');
      assert.equal(piece.key, `backups/${BACKUP_ID}/kafka/metadata.json`);
      assert.ok(Date.parse(piece.snapshotAt) >= Date.parse(piece.startedAt));
      assert.ok(Date.parse(piece.snapshotAt) <= Date.parse(piece.finishedAt));
      assert.deepEqual(piece.details, {
        topics: doc.topics.length,
        groups: doc.groups.length,
        partitions: doc.topics.reduce((n, t) => n + t.partitions, 0),
        vanishedTopics: doc.vanishedTopics.length,
        format: 'ballast-kafka-metadata',
        version: 1,
      });
    });

    it('records the cluster and its brokers', async () => {
      const cluster = await admin.describeCluster();
      assert.equal(doc.clusterId, cluster.clusterId);
      assert.deepEqual(
        doc.brokers,
        cluster.brokers.map((b) => ({ id: b.nodeId, host: b.host, port: b.port })).sort((a, b) => a.id - b.id),
      );
      assert.deepEqual(doc.brokers.map((b) => b.id), loaded.config.kafka.brokers.map((b) => b.id).sort());
    });

    it("lists the test topic with its partitions, replication and only its own config overrides", () => {
      const topic = doc.topics.find((t) => t.name === TOPIC);
      assert.ok(topic, 'test topic listed');
      assert.equal(topic.internal, false);
      assert.equal(topic.neededForRestore, true);
      assert.equal(topic.partitions, PARTITIONS);
      assert.equal(topic.replicationFactor, 3);
      assert.deepEqual(topic.replicaAssignment.map((r) => r.partition), [0, 1, 2, 3, 4]);
      for (const r of topic.replicaAssignment) {
        assert.equal(new Set(r.replicas).size, 3);
        assert.ok(r.replicas.includes(r.leader));
      }
      // min.insync.replicas=2 comes from server.properties (isDefault false, but the broker's): not kept.
      assert.deepEqual(topic.configs, { 'max.message.bytes': MAX_MESSAGE_BYTES, 'retention.ms': RETENTION_MS });
      const offsetsTopic = doc.topics.find((t) => t.name === '__consumer_offsets');
      assert.ok(offsetsTopic, '__consumer_offsets listed');
      assert.equal(offsetsTopic.internal, true);
      assert.equal(offsetsTopic.neededForRestore, false);
    });

    it('records the watermarks fetchTopicOffsets reports', async () => {
      const topic = doc.topics.find((t) => t.name === TOPIC)!;
      const now = (await admin.fetchTopicOffsets(TOPIC))
        .map((o) => ({ partition: o.partition, low: o.low, high: o.high }))
        .sort((a, b) => a.partition - b.partition);
      assert.deepEqual(topic.watermarks, now);
      assert.equal(topic.watermarks[0]!.high, '1500');
      assert.equal(topic.watermarks[EMPTY_PARTITION]!.high, '0');
    });

    it("records the test group's committed offsets as fetchOffsets reports them", async () => {
      const group = doc.groups.find((g) => g.groupId === GROUP);
      assert.ok(group, 'test group listed');
      assert.equal(group.state, 'Empty');
      assert.equal(group.members, 0);
      const fetched = (await admin.fetchOffsets({ groupId: GROUP }))
        .map((t) => ({
          topic: t.topic,
          partitions: t.partitions.map((p) => ({ partition: p.partition, offset: p.offset, metadata: p.metadata ?? null })).sort((a, b) => a.partition - b.partition),
        }))
        .sort((a, b) => a.topic.localeCompare(b.topic));
      assert.deepEqual(group.offsets, fetched);
      const mine = group.offsets.find((t) => t.topic === TOPIC)!;
      assert.deepEqual(
        mine.partitions.filter((p) => p.offset !== '-1').map((p) => [p.partition, p.offset]),
        [
          [0, '100'],
          [1, '7'],
          [2, '0'],
        ],
      );
      assert.equal(doc.groups.some((g) => g.groupId.startsWith(BACKUP_GROUP_PREFIX)), false, 'backup groups left out');
    });

    it('lists a topic created the moment before it started, whichever broker has not caught up yet', async () => {
      await admin.createTopics({ waitForLeaders: false, topics: [{ topic: FRESH_TOPIC, numPartitions: 3, replicationFactor: 3 }] });
      const fresh: ComponentResult = await mockEnv().run(activities.backupKafkaMetadata, { backupId: FRESH_BACKUP_ID });
      const { bytes } = await getObject(fresh.pieces[0]!.key);
      const freshDoc = JSON.parse(bytes.toString('utf8')) as KafkaMetadataBackup;
      const topic = freshDoc.topics.find((t) => t.name === FRESH_TOPIC);
      assert.ok(topic, `${FRESH_TOPIC} listed; vanished: ${freshDoc.vanishedTopics.join(', ')}`);
      assert.equal(topic.partitions, 3);
      assert.equal(topic.replicationFactor, 3);
      assert.equal(topic.watermarks.length, 3);
    });

    it('finds its complete piece on a second call without rewriting it', async () => {
      const key = result.pieces[0]!.key;
      const before = await lastModified(key);
      await new Promise((r) => setTimeout(r, 1100));
      const again: ComponentResult = await mockEnv().run(activities.backupKafkaMetadata, { backupId: BACKUP_ID });
      assert.equal(again.resumed, true);
      assert.deepEqual(again.pieces, result.pieces);
      assert.equal(await lastModified(key), before);
    });
  });

  describe('backupKafkaTopicData', () => {
    let result: ComponentResult;
    let elapsedMs: number;
    const heartbeats: KafkaTopicHeartbeat[] = [];

    before(async () => {
      const env = mockEnv();
      env.on('heartbeat', (d: KafkaTopicHeartbeat) => heartbeats.push(d));
      const started = Date.now();
      result = await env.run(activities.backupKafkaTopicData, { backupId: BACKUP_ID, topic: TOPIC });
      elapsedMs = Date.now() - started;
      const total = result.pieces.reduce((n, p) => n + (p.messages ?? 0), 0);
      console.log(`# backed up ${TOPIC}: ${total} messages in ${PARTITIONS} partitions in ${elapsedMs} ms`);
    });

    it('writes one piece per partition, with the captured offsets', async () => {
      assert.equal(result.component, 'kafka');
      assert.equal(result.resumed, false);
      assert.deepEqual(result.pieces.map((p) => p.name), [0, 1, 2, 3, 4].map((p) => `${TOPIC}/${p}`));
      const offsets = await admin.fetchTopicOffsets(TOPIC);
      for (const piece of result.pieces) {
        const partition = Number(piece.name.split('/').pop());
        const o = offsets.find((x) => x.partition === partition)!;
        assert.equal(piece.key, `backups/${BACKUP_ID}/kafka/topics/${TOPIC}/${partition}.ndjson.gz`);
        assert.equal(piece.messages, expected.get(partition)!.length, `${piece.name}: messages`);
        assert.equal(piece.component, 'kafka');
        assert.ok(piece.snapshotAt <= piece.startedAt);
        assert.deepEqual(
          { ...piece.details, firstOffset: undefined, lastOffset: undefined },
          {
            topic: TOPIC,
            partition,
            lowOffset: o.low,
            highOffset: o.high,
            firstOffset: undefined,
            lastOffset: undefined,
            format: 'ndjson+gzip',
            keyEncoding: 'base64',
            valueEncoding: 'base64',
            headerEncoding: 'base64',
          },
        );
      }
      assert.ok(elapsedMs < 20_000, `took ${elapsedMs} ms`);
    });

    it('stores exactly the produced messages, per partition, in offset order', async () => {
      for (const piece of result.pieces) {
        const partition = Number(piece.name.split('/').pop());
        const { bytes } = await getObject(piece.key);
        checkPieceBytes(piece, bytes);
        const text = gunzipSync(bytes).toString('utf8');
        const lines = text === '' ? [] : text.trimEnd().split('\n');
        const decoded = lines.map(decodeMessageLine);
        const got: Expected[] = decoded.map((m) => ({
          key: m.key === null ? null : m.key.toString('base64'),
          value: m.value === null ? null : m.value.toString('base64'),
          headers: Object.fromEntries(
            Object.entries(m.headers).map(([k, v]) => [k, Array.isArray(v) ? v.map((x) => x!.toString('base64')) : v!.toString('base64')]),
          ),
          timestamp: m.timestamp,
        }));
        assert.deepEqual(got, expected.get(partition), `${piece.name}: messages`);
        const offsets = decoded.map((m) => BigInt(m.offset));
        for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i]! > offsets[i - 1]!, `${piece.name}: offsets increase`);
        if (partition !== TX_PARTITION) assert.deepEqual(offsets, offsets.map((_, i) => BigInt(i)));
        const details = piece.details as { firstOffset: string | null; lastOffset: string | null; highOffset: string };
        assert.equal(details.firstOffset, decoded[0]?.offset ?? null);
        assert.equal(details.lastOffset, decoded.at(-1)?.offset ?? null);
        if (partition === EMPTY_PARTITION) {
          assert.equal(lines.length, 0);
          assert.equal(details.highOffset, '0');
        }
        if (partition === ABORTED_PARTITION) {
          assert.equal(lines.length, 0);
          assert.equal(details.highOffset, '41', '40 aborted records and the abort marker: copied through, nothing written');
        }
        if (partition === TX_PARTITION) {
          // 350 committed + 50 aborted records + 3 markers: the copy ended on a gap.
          assert.ok(BigInt(details.highOffset) > offsets.at(-1)! + 1n, 'the partition ends in a control record');
        }
      }
    });

    it('heartbeats its progress and leaves no consumer group behind', async () => {
      const last = heartbeats.at(-1)!;
      assert.equal(last.partitionsDone, PARTITIONS);
      assert.equal(last.messages, [...expected.values()].reduce((n, e) => n + e.length, 0));
      assert.deepEqual(last.donePartitions, [0, 1, 2, 3, 4]);
      assert.deepEqual(await throwAwayGroups(BACKUP_ID), []);
    });

    it('finds its complete pieces on a second call without rewriting them', async () => {
      const before = await Promise.all(result.pieces.map((p) => lastModified(p.key)));
      await new Promise((r) => setTimeout(r, 1100));
      const again: ComponentResult = await mockEnv().run(activities.backupKafkaTopicData, { backupId: BACKUP_ID, topic: TOPIC });
      assert.equal(again.resumed, true);
      assert.deepEqual(again.pieces, result.pieces);
      assert.deepEqual(await Promise.all(result.pieces.map((p) => lastModified(p.key))), before);
      assert.deepEqual(await throwAwayGroups(BACKUP_ID), []);
    });

    it('redoes only the missing partition on a retry, from the heartbeat end offsets', async () => {
      const redo = result.pieces[1]!;
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: markerKey(redo.key) }));
      const others = result.pieces.filter((p) => p !== redo);
      const before = await Promise.all(others.map((p) => lastModified(p.key)));
      await new Promise((r) => setTimeout(r, 1100));
      const last = heartbeats.at(-1)!;
      const env = mockEnv({ attempt: 2, heartbeatDetails: { ...last, partitionsDone: 4, donePartitions: [0, 2, 3, 4] } });
      const again: ComponentResult = await env.run(activities.backupKafkaTopicData, { backupId: BACKUP_ID, topic: TOPIC });
      assert.equal(again.resumed, true);
      assert.deepEqual(await Promise.all(others.map((p) => lastModified(p.key))), before);
      const redone = again.pieces[1]!;
      assert.notEqual(redone.startedAt, redo.startedAt, 'rewritten');
      assert.equal(redone.messages, redo.messages);
      assert.equal(redone.sha256, redo.sha256, 'same bytes: same messages, deterministic gzip');
      assert.equal(redone.snapshotAt, redo.snapshotAt, 'same captured end point');
      assert.deepEqual(await throwAwayGroups(BACKUP_ID), []);
    });

    it('fails an unknown topic non-retryably, naming it', async () => {
      const missing = `ballast-test-kbackup-missing-${run}`;
      await assert.rejects(
        mockEnv().run(activities.backupKafkaTopicData, { backupId: BACKUP_ID, topic: missing }),
        (err: Error & { nonRetryable?: boolean }) => {
          assert.equal(err.name, 'ApplicationFailure');
          assert.equal(err.nonRetryable, true);
          assert.ok(err.message.includes(missing), err.message);
          return true;
        },
      );
      await assert.rejects(
        mockEnv().run(activities.backupKafkaTopicData, { backupId: BACKUP_ID, topic: 'no/such topic' }),
        (err: Error & { nonRetryable?: boolean }) => err.nonRetryable === true && /topic: invalid Kafka topic name "no\/such topic"/.test(err.message),
      );
    });
  });

  describe('cancellation', () => {
    it('stops, aborts its uploads and deletes its consumer group when cancelled mid-copy', async () => {
      // Enough messages that the copy takes seconds (it runs at tens of thousands a second).
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      await producer.connect();
      try {
        const value = 'v'.repeat(200);
        for (let i = 0; i < 100_000; i += 2_000) {
          await producer.send({
            topic: BIG_TOPIC,
            acks: -1,
            messages: Array.from({ length: 2_000 }, (_, j) => ({ key: `k${i + j}`, value })),
          });
        }
      } finally {
        await producer.disconnect();
      }

      // Cancel 200 ms after the throw-away consumer group shows up, i.e. while it copies.
      const env = mockEnv();
      let lastBeat: KafkaTopicHeartbeat | undefined;
      env.on('heartbeat', (d: KafkaTopicHeartbeat) => {
        lastBeat = d;
      });
      let settled = false;
      const started = Date.now();
      const running = env.run(activities.backupKafkaTopicData, { backupId: CANCEL_BACKUP_ID, topic: BIG_TOPIC }).finally(() => {
        settled = true;
      });
      let cancelledAfterMs: number | undefined;
      while (!settled && cancelledAfterMs === undefined) {
        if ((await throwAwayGroups(CANCEL_BACKUP_ID)).length) {
          await new Promise((r) => setTimeout(r, 200));
          cancelledAfterMs = Date.now() - started;
          env.cancel();
        } else {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      await assert.rejects(running, (err: Error) => {
        assert.equal(err.name, 'CancelledFailure', `${err.name}: ${err.message}`);
        return true;
      });
      assert.ok(cancelledAfterMs !== undefined, 'cancelled while copying');
      console.log(
        `# cancelled ${cancelledAfterMs} ms after the start (last heartbeat: ${lastBeat?.messages ?? 0} messages); ` +
          `the activity ended ${Date.now() - started} ms after it started`,
      );
      const key = `backups/${CANCEL_BACKUP_ID}/kafka/topics/${BIG_TOPIC}/0.ndjson.gz`;
      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), 'no partial object');
      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: markerKey(key) })), 'no marker');
      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
      assert.deepEqual(uploads.Uploads ?? [], [], 'no multipart upload left');
      assert.deepEqual(await throwAwayGroups(CANCEL_BACKUP_ID), []);
    });
  });
});

/** An activity environment whose worker logger keeps quiet about the failures the tests expect. */
function mockEnv(info?: ConstructorParameters<typeof MockActivityEnvironment>[0]): MockActivityEnvironment {
  return new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR') });
}

async function deletePrefix(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  let token: string | undefined;
  do {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    token = listed.NextContinuationToken;
  } while (token);
}

