import { randomUUID } from 'node:crypto';
import { createGzip, type Gzip } from 'node:zlib';
import type { Context } from '@temporalio/activity';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { uploadStream, type StreamedObject } from '../storage/backupObjects';
import { cancellationReason } from '../common/cancellation';
import { BACKUP_GROUP_PREFIX, encodeMessageLine, type PartitionRange } from './backupFormat';
import { deleteConsumerGroup } from './topics';

/** Partitions copied at once: each has a gzip stream and an upload open (at most ~40 MiB each). */
const ACTIVE_PARTITIONS = 4;
/** Messages are gzipped in chunks of about this many characters. */
const WRITE_CHUNK = 256 * 1024;
/** An active partition without progress for this long is checked against the log (truncation). */
const IDLE_CHECK_MS = 5_000;

export interface PartitionJob {
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
  /** Counts the messages copied and heartbeats them. */
  progress: { messages: number; beat(): void };
  record: (job: PartitionJob, stored: StreamedObject, started: Date) => Promise<void>;
}

/**
 * Runs one throw-away consumer over the topic, copying at most ACTIVE_PARTITIONS partitions at a
 * time (the others stay paused), each into its own streamed upload. Resolves when every job's
 * object and completion marker are written; on failure or cancellation aborts the open uploads.
 * Always stops the consumer and deletes its group.
 */
export async function copyPartitions(req: CopyRequest): Promise<void> {
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
export class PartitionWriter {
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
