/**
 * Reading a table's backup objects back: the schema whole, and each partition streamed from the
 * backup bucket straight into `INSERT INTO ... FORMAT Native` with `decompress=1`, counted and
 * hashed on the way.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import { ApplicationFailure } from '@temporalio/common';
import type { BackupPiece } from '../../contracts/backupTypes';
import { Failure } from '../../contracts/failures';
import { qualifiedName, quoteString } from './sql';
import type { PartitionPiece } from './tablePieces';

/** A schema.sql larger than this is not a SHOW CREATE TABLE text. */
const MAX_SCHEMA_BYTES = 16 * 1024 * 1024;

/** What the loads of one table's partitions share. */
export interface TableLoad {
  client: ClickHouseClient;
  s3: S3Client;
  bucket: string;
  targetDatabase: string;
  table: string;
  /** The activity's: a cancellation cuts the object stream and kills the server's query. */
  cancellationSignal: AbortSignal;
}

/** Streams one partition object from the bucket into the table; never holds it whole. */
export async function loadPartition(job: TableLoad, p: PartitionPiece, onBytes: (bytes: number) => void): Promise<void> {
  const { client, s3: s3Client, bucket, cancellationSignal } = job;
  const unit = `clickhouse ${job.targetDatabase}.${job.table}`;
  const target = qualifiedName(job.targetDatabase, job.table);
  const object = await s3Client.send(new GetObjectCommand({ Bucket: bucket, Key: p.piece.key }), {
    abortSignal: cancellationSignal,
  });
  const body = object.Body as Readable | undefined;
  if (!body || typeof body.pipe !== 'function') throw new Error(`${p.piece.key}: the object store returned no stream`);
  if (object.ContentLength !== undefined && object.ContentLength !== p.piece.size) {
    body.destroy();
    throw corrupt(`${p.piece.key} holds ${object.ContentLength} bytes, the manifest says ${p.piece.size}`);
  }
  const counter = new Counter(onBytes);
  const queryId = `ballast-restore-${randomUUID()}`;
  const onCancel = () => {
    body.destroy(new Error(`restore of ${unit} cancelled`));
    void client.command({ query: `KILL QUERY WHERE query_id = ${quoteString(queryId)} ASYNC` }).catch(() => undefined);
  };
  if (cancellationSignal.aborted) onCancel();
  cancellationSignal.addEventListener('abort', onCancel);
  const reading = pipeline(body, counter);
  try {
    const insert = (async () => {
      const { stream } = await client.exec({
        query: `INSERT INTO ${target} FORMAT Native`,
        query_id: queryId,
        values: counter,
        // The object is ClickHouse's own compressed block format: the server decompresses
        // it (and checks each block's checksum). HTTP compression stays off.
        clickhouse_settings: { decompress: 1, enable_http_compression: 0 },
        abort_signal: cancellationSignal,
      });
      for await (const _ of stream as AsyncIterable<unknown>) {
        // the (empty) answer of an INSERT
      }
    })();
    const [inserted, read] = await Promise.allSettled([insert, reading]);
    if (read.status === 'rejected') throw read.reason;
    if (inserted.status === 'rejected') throw inserted.reason;
  } catch (err) {
    body.destroy();
    counter.destroy();
    throw err;
  } finally {
    cancellationSignal.removeEventListener('abort', onCancel);
  }
  cancellationSignal.throwIfAborted();
  if (counter.bytes !== p.piece.size) throw corrupt(`${p.piece.key}: read ${counter.bytes} bytes, the manifest says ${p.piece.size}`);
  const sha256 = counter.hash.digest('hex');
  if (p.piece.sha256 && sha256 !== p.piece.sha256) {
    throw corrupt(`${p.piece.key} does not match the sha256 the manifest records (partition ${p.partitionId} was loaded from it)`);
  }
}

/** Reads a small object whole (schema.sql only). */
export async function readSmallObject(s3: S3Client, bucket: string, piece: BackupPiece, signal: AbortSignal): Promise<Buffer> {
  if (piece.size > MAX_SCHEMA_BYTES) throw new Error(`${piece.key}: ${piece.size} bytes is too large for a schema`);
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: piece.key }), { abortSignal: signal });
  const bytes = Buffer.from(await object.Body!.transformToByteArray());
  if (bytes.length !== piece.size) throw corrupt(`${piece.key} holds ${bytes.length} bytes, the manifest says ${piece.size}`);
  if (piece.sha256 && createHash('sha256').update(bytes).digest('hex') !== piece.sha256) {
    throw corrupt(`${piece.key} does not match the sha256 the manifest records`);
  }
  return bytes;
}

function corrupt(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`backup object damaged: ${message}`, Failure.BackupCorrupt);
}

/** Counts and hashes the bytes passing through. */
class Counter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly onBytes: (bytes: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes(this.bytes);
    done(null, chunk);
  }
}
