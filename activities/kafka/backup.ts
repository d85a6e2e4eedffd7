import { ApplicationFailure, Context } from '@temporalio/activity';
import { heartbeat } from '../common/heartbeat';
import type { BackupPiece, ComponentResult } from '../../contracts/backupTypes';
import { mapLimit } from '../../contracts/concurrency';
import { Failure } from '../../contracts/failures';
import { abortStaleUploads, backupKey, findCompletePiece, markPieceComplete, type StreamedObject } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';
import { checkBackupId, throwIfCancelled } from './backupChecks';
import { KAFKA_DATA_FORMAT, PartitionRange, isValidTopicName, type KafkaPartitionDetails } from './backupFormat';
import { createKafkaMetadataBackupActivities } from './metadataBackup';
import { PartitionWriter, copyPartitions, type PartitionJob } from './partitionCopy';

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

const HEARTBEAT_EVERY_MS = 1_000;
/** Bucket requests (earlier pieces, stale uploads, empty pieces) run this many at once. */
const BUCKET_CONCURRENCY = 8;

export function createKafkaBackupActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    ...createKafkaMetadataBackupActivities(deps),

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
        const found = await mapLimit(partitions, BUCKET_CONCURRENCY, async (p) => {
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

        await mapLimit(todo, BUCKET_CONCURRENCY, (job) => abortStaleUploads(s3, bucket, job.key));

        // Partitions with nothing to copy still get an (empty) object, so a restore knows they were covered.
        const empty = todo.filter((j) => j.range.done);
        await mapLimit(empty, BUCKET_CONCURRENCY, async (job) => {
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
    heartbeat(details, this.ctx);
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
