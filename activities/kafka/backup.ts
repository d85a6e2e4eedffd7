import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGzip, type Gzip } from 'node:zlib';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigResourceTypes, type Admin, type Consumer, type Kafka, type KafkaMessage } from 'kafkajs';
import { backupIdProblem } from '../../contracts/backupId';
import type { BackupPiece, ComponentResult } from '../../contracts/backupTypes';
import { Failure } from '../../contracts/failures';
import {
  abortStaleUploads,
  backupKey,
  findCompletePiece,
  markPieceComplete,
  putJson,
  uploadStream,
  type StreamedObject,
} from '../storage/backupObjects';
import { cancellationReason } from '../common/cancellation';
import { chunks } from '../common/chunks';
import type { ActivityDeps } from '../deps';
import { settledTopicNames } from './protocolRequests';
import { deleteConsumerGroup } from './topics';
import { mapLimit } from '../../contracts/concurrency';
import {
  BACKUP_GROUP_PREFIX,
  KAFKA_DATA_FORMAT,
  KAFKA_METADATA_FORMAT,
  KAFKA_METADATA_VERSION,
  PartitionRange,
  encodeMessageLine,
  isInternalTopic,
  isValidTopicName,
  topicConfigOverrides,
  type KafkaGroupMetadata,
  type KafkaMetadataBackup,
  type KafkaPartitionDetails,
  type KafkaTopicMetadata,
} from './backupFormat';

export interface KafkaMetadataBackupRequest {
  backupId: string;
}

export interface KafkaTopicBackupRequest {
  backupId: string;
  topic: string;
}

/** What a topic backup heartbeats, and a retry resumes from. */
export interface KafkaTopicHeartbeat {
  partitionsDone: number;
  messages: number;
  /** When the end offsets were captured, and the end offsets: a retry keeps the same end point. */
  capturedAt: string;
  highs: Record<string, string>;
  donePartitions: number[];
}

/** Partitions copied at once: each has a gzip stream and an upload open (at most ~40 MiB each). */
const ACTIVE_PARTITIONS = 4;
/** Messages are gzipped in chunks of about this many characters. */
const WRITE_CHUNK = 256 * 1024;
/** An active partition without progress for this long is checked against the log (truncation). */
const IDLE_CHECK_MS = 5_000;
const HEARTBEAT_EVERY_MS = 1_000;
/** Admin requests run this many at once (per group, per topic). */
const ADMIN_CONCURRENCY = 8;
/** How long the metadata backup waits for the brokers to agree on the topic list. */
const TOPIC_SETTLE_MS = 10_000;

export function createKafkaBackupActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    /**
     * Writes the cluster's metadata as one JSON object: brokers, every topic (partitions, replica
     * assignment, the topic's own config overrides, low/high watermarks) and every consumer group
     * with its committed offsets. Group offsets are read before the watermarks, so each committed
     * offset is at most the recorded high watermark of its partition.
     */
    async backupKafkaMetadata({ backupId }: KafkaMetadataBackupRequest): Promise<ComponentResult> {
      const ctx = Context.current();
      checkBackupId('backupKafkaMetadata', backupId);
      const unit = 'kafka metadata';
      const key = backupKey(backupId, 'kafka', 'metadata.json');
      const s3 = connections.s3();
      try {
        const earlier = await findCompletePiece(s3, bucket, key);
        if (earlier) return { component: 'kafka', unit, pieces: [earlier], resumed: true };

        const started = new Date();
        const admins = new RenewableAdmin(() => connections.kafka(60_000).admin());
        try {
          const checkCancelled = () => throwIfCancelled(ctx);
          const cluster = await admins.call((a) => a.describeCluster());
          // Other people create and delete topics while this runs: a topic deleted between the
          // listing and a later read is left out (and named in vanishedTopics), not an error.
          const vanished = new Set<string>();
          // Every broker is asked, until they agree: a topic created a moment before the backup may
          // not have reached the metadata of every broker yet. kafkajs' own listing is the fallback
          // when none answers.
          const settled = await settledTopicNames(config.kafka.brokers, 10_000, TOPIC_SETTLE_MS);
          const { names, metadata } = await admins.call(async (a) => {
            const listed = settled ?? (await a.listTopics()).sort();
            return { names: listed, metadata: listed.length ? await a.fetchTopicMetadata({ topics: listed }) : { topics: [] } };
          }, 6);
          checkCancelled();
          const stillThere = async (name: string) => (await admins.call((a) => a.listTopics())).includes(name);
          const configs = await admins.call((a) => describeTopicConfigs(a, names, vanished));
          checkCancelled();

          const groupIds = (await admins.call((a) => a.listGroups())).groups
            .filter((g) => !g.groupId.startsWith(BACKUP_GROUP_PREFIX))
            .sort((a, b) => a.groupId.localeCompare(b.groupId));
          const described = new Map<string, { state: string; members: number; protocolType: string }>();
          for (const chunk of chunks(groupIds.map((g) => g.groupId), 50)) {
            for (const g of (await admins.call((a) => a.describeGroups(chunk))).groups) {
              described.set(g.groupId, { state: g.state, members: g.members.length, protocolType: g.protocolType });
            }
          }

          const groupOffsetsFrom = new Date();
          const allGroups = await mapLimit(groupIds, ADMIN_CONCURRENCY, async (g): Promise<KafkaGroupMetadata> => {
            checkCancelled();
            const offsets = await admins.call((a) => a.fetchOffsets({ groupId: g.groupId }));
            ctx.heartbeat({ phase: 'groups', group: g.groupId });
            const d = described.get(g.groupId);
            return {
              groupId: g.groupId,
              protocolType: d?.protocolType || g.protocolType,
              state: d?.state ?? 'Unknown',
              members: d?.members ?? 0,
              offsets: offsets
                .map((t) => ({
                  topic: t.topic,
                  partitions: t.partitions
                    .map((p) => ({ partition: p.partition, offset: p.offset, metadata: p.metadata ?? null }))
                    .sort((a, b) => a.partition - b.partition),
                }))
                .sort((a, b) => a.topic.localeCompare(b.topic)),
            };
          });
          // A group deleted since the listing is Dead with nothing committed: nothing to restore.
          const groups = allGroups.filter((g) => !(g.state === 'Dead' && g.offsets.length === 0));
          const groupOffsetsTo = new Date();

          const watermarksFrom = new Date();
          const watermarks = await mapLimit(names, ADMIN_CONCURRENCY, async (name) => {
            checkCancelled();
            if (vanished.has(name)) return undefined;
            const offsets = await admins.callUnlessGone((a) => a.fetchTopicOffsets(name), async () => !(await stillThere(name)));
            ctx.heartbeat({ phase: 'watermarks', topic: name });
            if (!offsets) {
              vanished.add(name);
              return undefined;
            }
            return offsets
              .map((o) => ({ partition: o.partition, low: o.low, high: o.high }))
              .sort((a, b) => a.partition - b.partition);
          });
          const watermarksTo = new Date();

          const byName = new Map(metadata.topics.map((t) => [t.name, t]));
          const topics: KafkaTopicMetadata[] = names.flatMap((name, i) => {
            if (vanished.has(name)) return [];
            const partitions = [...(byName.get(name)?.partitions ?? [])].sort((a, b) => a.partitionId - b.partitionId);
            const internal = isInternalTopic(name);
            return {
              name,
              internal,
              neededForRestore: !internal,
              partitions: partitions.length,
              replicationFactor: Math.max(0, ...partitions.map((p) => p.replicas.length)),
              replicaAssignment: partitions.map((p) => ({
                partition: p.partitionId,
                replicas: p.replicas,
                leader: p.leader,
                isr: p.isr,
              })),
              configs: configs.get(name) ?? {},
              watermarks: watermarks[i] ?? [],
            };
          });

          const doc: KafkaMetadataBackup = {
            format: KAFKA_METADATA_FORMAT,
            version: KAFKA_METADATA_VERSION,
            backupId,
            clusterId: cluster.clusterId,
            controller: cluster.controller,
            brokers: cluster.brokers
              .map((b) => ({ id: b.nodeId, host: b.host, port: b.port }))
              .sort((a, b) => a.id - b.id),
            times: {
              startedAt: started.toISOString(),
              groupOffsetsFrom: groupOffsetsFrom.toISOString(),
              groupOffsetsTo: groupOffsetsTo.toISOString(),
              watermarksFrom: watermarksFrom.toISOString(),
              watermarksTo: watermarksTo.toISOString(),
            },
            topics,
            groups,
            vanishedTopics: [...vanished].sort(),
          };
          checkCancelled();
          const stored = await putJson(s3, bucket, key, doc);
          const finished = new Date();
          const piece: BackupPiece = {
            component: 'kafka',
            name: 'metadata',
            key,
            size: stored.size,
            sha256: stored.sha256,
            snapshotAt: groupOffsetsFrom.toISOString(),
            startedAt: started.toISOString(),
            finishedAt: finished.toISOString(),
            durationMs: finished.getTime() - started.getTime(),
            details: {
              topics: topics.length,
              groups: groups.length,
              partitions: topics.reduce((n, t) => n + t.partitions, 0),
              vanishedTopics: vanished.size,
              format: KAFKA_METADATA_FORMAT,
              version: KAFKA_METADATA_VERSION,
            },
          };
          await markPieceComplete(s3, bucket, piece);
          return { component: 'kafka', unit, pieces: [piece], resumed: false };
        } finally {
          await admins.close();
        }
      } finally {
        s3.destroy();
      }
    },

    /**
     * Copies a topic's messages, partition by partition, from each partition's low watermark up to
     * the high watermark captured at the start, into one gzipped NDJSON object per partition. A
     * throw-away consumer group reads them (kafkajs has no assign()); it never commits and is
     * deleted at the end. Partitions already complete from an earlier attempt are skipped.
     */
    async backupKafkaTopicData({ backupId, topic }: KafkaTopicBackupRequest): Promise<ComponentResult> {
      const ctx = Context.current();
      checkBackupId('backupKafkaTopicData', backupId);
      if (typeof topic !== 'string' || !isValidTopicName(topic)) {
        throw ApplicationFailure.nonRetryable(`backupKafkaTopicData: topic: invalid Kafka topic name ${JSON.stringify(topic)}`, Failure.InvalidInput);
      }
      const unit = `kafka topic ${topic}`;
      const kafka = connections.kafka(60_000);
      const s3 = connections.s3(300_000);
      const admin = kafka.admin();
      try {
        await admin.connect();
        if (!(await admin.listTopics()).includes(topic)) {
          throw ApplicationFailure.nonRetryable(`backupKafkaTopicData: topic ${JSON.stringify(topic)} does not exist`, Failure.UnknownTopic, {
            topic,
          });
        }

        const previous = readHeartbeat(ctx.info.heartbeatDetails);
        const offsets = await admin.fetchTopicOffsets(topic);
        const capturedAt = previous?.capturedAt ?? new Date().toISOString();
        // A retry keeps the end point of the first attempt (unless the log was truncated below it
        // since); partitions added meanwhile get today's.
        const partitions = offsets
          .map((o) => {
            const earlier = previous?.highs[o.partition];
            const high = earlier !== undefined && BigInt(earlier) <= BigInt(o.high) ? earlier : o.high;
            return { partition: o.partition, low: o.low, high };
          })
          .sort((a, b) => a.partition - b.partition);
        const highs = Object.fromEntries(partitions.map((p) => [String(p.partition), p.high]));

        const pieces = new Map<number, BackupPiece>();
        const found = await mapLimit(partitions, ADMIN_CONCURRENCY, async (p) => {
          const key = backupKey(backupId, 'kafka', 'topics', topic, `${p.partition}.ndjson.gz`);
          return { ...p, key, earlier: await findCompletePiece(s3, bucket, key) };
        });
        const todo: PartitionJob[] = [];
        for (const p of found) {
          if (p.earlier) pieces.set(p.partition, p.earlier);
          else todo.push({ partition: p.partition, key: p.key, low: p.low, high: p.high, range: new PartitionRange(p.low, p.high) });
        }
        const resumed = pieces.size > 0;

        const progress = new Progress(ctx, capturedAt, highs, pieces);
        progress.beat(true);
        throwIfCancelled(ctx);

        const record = async (job: PartitionJob, stored: StreamedObject, started: Date) => {
          const finished = new Date();
          const details: KafkaPartitionDetails = {
            topic,
            partition: job.partition,
            lowOffset: job.low,
            highOffset: job.high,
            firstOffset: job.firstOffset ?? null,
            lastOffset: job.lastOffset ?? null,
            format: KAFKA_DATA_FORMAT,
            keyEncoding: 'base64',
            valueEncoding: 'base64',
            headerEncoding: 'base64',
          };
          const piece: BackupPiece = {
            component: 'kafka',
            name: `${topic}/${job.partition}`,
            key: job.key,
            size: stored.size,
            sha256: stored.sha256,
            messages: job.range.messages,
            snapshotAt: capturedAt,
            startedAt: started.toISOString(),
            finishedAt: finished.toISOString(),
            durationMs: finished.getTime() - started.getTime(),
            details: { ...details },
          };
          await markPieceComplete(s3, bucket, piece);
          pieces.set(job.partition, piece);
          progress.beat(true);
        };

        await mapLimit(todo, ADMIN_CONCURRENCY, (job) => abortStaleUploads(s3, bucket, job.key));

        // Partitions with nothing to copy still get an (empty) object, so a restore knows they were covered.
        const empty = todo.filter((j) => j.range.done);
        await mapLimit(empty, ADMIN_CONCURRENCY, async (job) => {
          throwIfCancelled(ctx);
          const started = new Date();
          const stored = await new PartitionWriter(s3, bucket, job.key).end();
          await record(job, stored, started);
        });

        const withData = todo.filter((j) => !j.range.done);
        if (withData.length) {
          await copyPartitions({ kafka, admin, s3, bucket, backupId, topic, jobs: withData, ctx, progress, record });
        }

        return {
          component: 'kafka',
          unit,
          pieces: [...pieces.values()].sort((a, b) => partitionOf(a) - partitionOf(b)),
          resumed,
        };
      } finally {
        await admin.disconnect().catch(() => undefined);
        s3.destroy();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------

interface PartitionJob {
  partition: number;
  key: string;
  low: string;
  high: string;
  range: PartitionRange;
  firstOffset?: string;
  lastOffset?: string;
}

interface ActiveJob {
  job: PartitionJob;
  writer: PartitionWriter;
  started: Date;
  lastProgress: number;
  finishing: boolean;
}

interface CopyRequest {
  kafka: Kafka;
  admin: Admin;
  s3: S3Client;
  bucket: string;
  backupId: string;
  topic: string;
  jobs: PartitionJob[];
  ctx: Context;
  progress: Progress;
  record: (job: PartitionJob, stored: StreamedObject, started: Date) => Promise<void>;
}

/**
 * Runs one throw-away consumer over the topic, copying at most ACTIVE_PARTITIONS partitions at a
 * time (the others stay paused), each into its own streamed upload. Resolves when every job's
 * object and completion marker are written; on failure or cancellation aborts the open uploads.
 * Always stops the consumer and deletes its group.
 */
async function copyPartitions(req: CopyRequest): Promise<void> {
  const { kafka, admin, s3, bucket, backupId, topic, jobs, ctx, progress, record } = req;
  const groupId = `${BACKUP_GROUP_PREFIX}${backupId}-${topic}-${randomUUID()}`;
  const pending = [...jobs];
  const active = new Map<number, ActiveJob>();
  const finishing = new Set<Promise<void>>();
  let remaining = jobs.length;
  let failure: unknown;
  let resolveAll!: () => void;
  let rejectAll!: (err: unknown) => void;
  const allDone = new Promise<void>((resolve, reject) => {
    resolveAll = resolve;
    rejectAll = reject;
  });
  allDone.catch(() => undefined);

  const consumer: Consumer = kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    // Return as soon as any data is there; an idle partition answers within 100 ms, so the last
    // fetch of a copy never waits long.
    minBytes: 1,
    maxWaitTimeInMs: 100,
    maxBytesPerPartition: 2 * 1024 * 1024,
    maxBytes: 8 * 1024 * 1024,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    // A crash ends the copy (the activity's retry starts over cleanly) instead of a restart that
    // would forget the seek positions.
    retry: { retries: 6, initialRetryTime: 300, restartOnFailure: async () => false },
  });

  const fail = (err: unknown) => {
    if (failure !== undefined) return;
    failure = err ?? new Error('kafka topic backup failed');
    for (const a of active.values()) a.writer.abort(failure);
    rejectAll(failure);
  };

  const pausePartitions = (partitions: number[]) => {
    if (partitions.length) consumer.pause([{ topic, partitions }]);
  };

  const activateMore = () => {
    while (failure === undefined && active.size < ACTIVE_PARTITIONS && pending.length) {
      const job = pending.shift()!;
      active.set(job.partition, {
        job,
        writer: new PartitionWriter(s3, bucket, job.key),
        started: new Date(),
        lastProgress: Date.now(),
        finishing: false,
      });
      consumer.seek({ topic, partition: job.partition, offset: job.range.position.toString() });
      consumer.resume([{ topic, partitions: [job.partition] }]);
    }
  };

  const finish = (a: ActiveJob) => {
    if (a.finishing) return;
    a.finishing = true;
    pausePartitions([a.job.partition]);
    const done = (async () => {
      const stored = await a.writer.end();
      await record(a.job, stored, a.started);
      active.delete(a.job.partition);
      remaining -= 1;
      if (remaining === 0) resolveAll();
      else activateMore();
    })().catch(fail);
    finishing.add(done);
    void done.finally(() => finishing.delete(done));
  };

  const onCancel = () => fail(cancellationReason(ctx));
  ctx.cancellationSignal.addEventListener('abort', onCancel);
  if (ctx.cancellationSignal.aborted) onCancel();

  const listeners = [
    // On every (re)join the assignment and positions start over: pause what is not being copied
    // and put the active partitions back where their copy is.
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      try {
        const assigned = payload.memberAssignment[topic] ?? [];
        for (const a of active.values()) {
          if (!a.finishing) consumer.seek({ topic, partition: a.job.partition, offset: a.job.range.position.toString() });
        }
        activateMore();
        pausePartitions(assigned.filter((p) => !active.has(p) || active.get(p)!.finishing));
      } catch (err) {
        fail(err);
      }
    }),
    // Batches that held only control records, aborted or compacted-away records never reach
    // eachBatch; their end offset still moves the position (the way past a gap at the end).
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic !== topic || payload.batchSize !== 0) return;
      const a = active.get(payload.partition);
      if (!a || a.finishing) return;
      a.job.range.passed(payload.lastOffset);
      a.lastProgress = Date.now();
      if (a.job.range.done) finish(a);
    }),
    consumer.on(consumer.events.CRASH, ({ payload }) => fail(payload.error)),
  ];

  // A partition whose remaining records were deleted (retention) or truncated away would never
  // reach its end through fetches: check idle ones against the log now and then.
  let checking = false;
  const idleCheck = setInterval(() => {
    const idle = [...active.values()].filter((a) => !a.finishing && Date.now() - a.lastProgress > IDLE_CHECK_MS);
    if (!idle.length || checking || failure !== undefined) return;
    checking = true;
    admin
      .fetchTopicOffsets(topic)
      .then((now) => {
        for (const a of idle) {
          const o = now.find((x) => x.partition === a.job.partition);
          if (!o || a.finishing) continue;
          const { range } = a.job;
          // Everything left in the range was deleted (retention), or the log was truncated below
          // the position (unclean leader election): no fetch will ever bring the rest.
          if (BigInt(o.low) >= range.end || BigInt(o.high) <= range.position) {
            range.passed(range.end - 1n);
            finish(a);
          }
          a.lastProgress = Date.now();
        }
      })
      .catch(() => undefined)
      .finally(() => {
        checking = false;
      });
  }, 1_000);

  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: ACTIVE_PARTITIONS,
      eachBatch: async ({ batch, resolveOffset, isRunning, isStale, pause }) => {
        const a = active.get(batch.partition);
        if (batch.topic !== topic || failure !== undefined) return;
        if (!a || a.finishing) {
          // Not being copied now: stop fetching it until it is activated (which seeks it again).
          pause();
          return;
        }
        const { job, writer } = a;
        let chunk = '';
        let complete = true;
        for (const message of batch.messages as KafkaMessage[]) {
          if (!isRunning() || isStale() || failure !== undefined) {
            complete = false;
            break;
          }
          if (job.range.accept(message.offset)) {
            chunk += encodeMessageLine(message);
            job.firstOffset ??= message.offset;
            job.lastOffset = message.offset;
            progress.messages += 1;
            if (chunk.length >= WRITE_CHUNK) {
              await writer.write(chunk);
              chunk = '';
              a.lastProgress = Date.now();
              progress.beat();
            }
          }
          if (job.range.done) break;
        }
        if (chunk) await writer.write(chunk);
        a.lastProgress = Date.now();
        if (complete) {
          job.range.passed(batch.lastOffset());
          resolveOffset(batch.lastOffset());
        }
        progress.beat();
        if (job.range.done) finish(a);
      },
    });
    await allDone;
    // The last markers are written by now; let any bookkeeping of finishing jobs settle.
    await Promise.all([...finishing]);
  } catch (err) {
    fail(err);
    throw failure;
  } finally {
    clearInterval(idleCheck);
    ctx.cancellationSignal.removeEventListener('abort', onCancel);
    for (const remove of listeners) remove();
    if (failure !== undefined) for (const a of active.values()) a.writer.abort(failure);
    await consumer.disconnect().catch(() => undefined);
    await Promise.allSettled([...finishing]);
    await deleteConsumerGroup(admin, groupId);
  }
}


/**
 * One partition's object: a gzip stream piped into a streamed upload. `write` waits while the
 * upload is behind (backpressure), so memory stays bounded whatever the partition's size.
 */
class PartitionWriter {
  // 64 KiB output chunks: a quarter of the callbacks of zlib's default, same bytes.
  private readonly gzip: Gzip = createGzip({ chunkSize: 64 * 1024 });
  private readonly uploaded: Promise<StreamedObject>;
  private error: unknown;

  constructor(s3: S3Client, bucket: string, key: string) {
    this.uploaded = uploadStream(s3, bucket, key, this.gzip);
    // A failed upload stops reading; destroying the stream wakes a write waiting for 'drain'.
    this.uploaded.catch((err) => this.abort(err ?? new Error(`upload of ${key} failed`)));
  }

  async write(text: string): Promise<void> {
    if (this.error !== undefined) throw this.error;
    if (this.gzip.write(text)) return;
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        this.gzip.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        this.gzip.off('drain', onDrain);
        reject(this.error ?? new Error('the upload stream closed'));
      };
      this.gzip.once('drain', onDrain);
      this.gzip.once('close', onClose);
    });
  }

  /** Ends the stream and waits for the object: size and sha256 of the gzipped bytes. */
  end(): Promise<StreamedObject> {
    if (this.error === undefined) this.gzip.end();
    return this.uploaded;
  }

  /** Destroys the stream, so the upload is aborted and no partial object is left. */
  abort(err: unknown): void {
    this.error ??= err;
    if (!this.gzip.destroyed) this.gzip.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}

/** Progress counters, heartbeated at most once a second (and at every finished partition). */
class Progress {
  messages: number;
  private last = 0;

  constructor(
    private readonly ctx: Context,
    private readonly capturedAt: string,
    private readonly highs: Record<string, string>,
    private readonly pieces: Map<number, BackupPiece>,
  ) {
    this.messages = [...pieces.values()].reduce((n, p) => n + (p.messages ?? 0), 0);
  }

  beat(force = false): void {
    const now = Date.now();
    if (!force && now - this.last < HEARTBEAT_EVERY_MS) return;
    this.last = now;
    const details: KafkaTopicHeartbeat = {
      partitionsDone: this.pieces.size,
      messages: this.messages,
      capturedAt: this.capturedAt,
      highs: this.highs,
      donePartitions: [...this.pieces.keys()].sort((a, b) => a - b),
    };
    this.ctx.heartbeat(details);
  }
}

function readHeartbeat(details: unknown): KafkaTopicHeartbeat | undefined {
  const d = details as Partial<KafkaTopicHeartbeat> | undefined;
  if (!d || typeof d.capturedAt !== 'string' || typeof d.highs !== 'object' || d.highs === null) return undefined;
  return { partitionsDone: 0, messages: 0, donePartitions: [], ...d } as KafkaTopicHeartbeat;
}

function partitionOf(piece: BackupPiece): number {
  return Number((piece.details as { partition?: number } | undefined)?.partition ?? piece.name.split('/').pop());
}

function checkBackupId(activity: string, backupId: unknown): void {
  const problem = backupIdProblem(backupId);
  if (problem) throw ApplicationFailure.nonRetryable(`${activity}: backupId: ${problem}`, Failure.InvalidInput);
}

function throwIfCancelled(ctx: Context): void {
  if (ctx.cancellationSignal.aborted) throw cancellationReason(ctx);
}

/**
 * Each topic's own config overrides, described in requests of at most 100 topics. A topic deleted
 * since it was listed is added to `vanished`.
 */
async function describeTopicConfigs(
  admin: Admin,
  topics: string[],
  vanished: Set<string>,
): Promise<Map<string, Record<string, string | null>>> {
  const result = new Map<string, Record<string, string | null>>();
  for (const chunk of chunks(topics, 100)) {
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: chunk.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
    });
    for (const r of described.resources) {
      if (r.errorCode === UNKNOWN_TOPIC_OR_PARTITION) {
        vanished.add(r.resourceName);
      } else if (r.errorCode) {
        throw new Error(`describeConfigs of topic ${r.resourceName} failed: ${r.errorMessage || `error ${r.errorCode}`}`);
      } else {
        result.set(r.resourceName, topicConfigOverrides(r.configEntries));
      }
    }
  }
  return result;
}

const UNKNOWN_TOPIC_OR_PARTITION = 3;

/**
 * An admin client that is replaced after a failure. kafkajs puts every topic a client has looked
 * at into all its later metadata requests, so one topic deleted meanwhile (or a transient error)
 * would fail every later call of the same client; a fresh client starts clean.
 */
class RenewableAdmin {
  private current?: Promise<Admin>;
  private generation = 0;
  private readonly opened: Admin[] = [];

  constructor(private readonly make: () => Admin) {}

  private handle(): { admin: Promise<Admin>; generation: number } {
    if (!this.current) {
      const admin = this.make();
      this.opened.push(admin);
      this.current = admin.connect().then(() => admin);
      this.current.catch(() => undefined);
    }
    return { admin: this.current, generation: this.generation };
  }

  private renew(generation: number): void {
    if (generation !== this.generation) return;
    this.generation += 1;
    this.current = undefined;
  }

  /** Runs `fn`, retrying on a fresh client after a failure. */
  async call<T>(fn: (admin: Admin) => Promise<T>, attempts = 4): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const { admin, generation } = this.handle();
      try {
        return await fn(await admin);
      } catch (err) {
        if (attempt >= attempts || err instanceof ApplicationFailure) throw err;
        this.renew(generation);
        await sleep(250 * attempt);
      }
    }
  }

  /** Like call, but gives up with undefined as soon as `gone()` says the thing read no longer exists. */
  async callUnlessGone<T>(fn: (admin: Admin) => Promise<T>, gone: () => Promise<boolean>, attempts = 4): Promise<T | undefined> {
    for (let attempt = 1; ; attempt++) {
      const { admin, generation } = this.handle();
      try {
        return await fn(await admin);
      } catch (err) {
        this.renew(generation);
        if (await gone()) return undefined;
        if (attempt >= attempts) throw err;
        await sleep(250 * attempt);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.opened.map((a) => a.disconnect().catch(() => undefined)));
  }
}
