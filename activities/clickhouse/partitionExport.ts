/**
 * The export of one partition: `SELECT * ... FORMAT Native` in ClickHouse's compressed block
 * format, streamed from the HTTP response into the upload and checked on the way.
 */
import { randomUUID } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import type { BackupPiece } from '../../contracts/backupTypes';
import { abortStaleUploads, uploadStream, type StreamedObject } from '../storage/backupObjects';
import { CompressedFrameReader, trailingException, uncompressedBlock, type CompressedStreamSummary } from './compressedBlocks';
import { partitionSelection, type CountedPartition } from './partitions';
import { qualifiedName, quoteString } from './sql';
import type { ServerCapabilities, TableInfo } from './tableInfo';

/**
 * How each data object is stored, recorded in its piece's details. A restore sends the object,
 * unchanged, as the body of
 *   POST <clickhouse url>/?query=INSERT INTO `db`.`table` FORMAT Native&decompress=1
 * (ClickHouse decompresses its own block format and reads Native; both 18.16 and current
 * releases accept it). Without HTTP: `clickhouse-compressor --decompress < object |
 * clickhouse-client --query "INSERT INTO db.table FORMAT Native"`.
 */
export const CLICKHOUSE_DATA_FORMAT = 'Native';
export const CLICKHOUSE_DATA_COMPRESSION = 'clickhouse-http-compress';

/** What the exports of one table's partitions share. */
export interface TableExport {
  client: ClickHouseClient;
  s3: S3Client;
  bucket: string;
  database: string;
  table: string;
  server: ServerCapabilities;
  info: TableInfo;
  /** A first attempt into a table folder that held nothing: no abandoned uploads to abort. */
  fresh: boolean;
  /** The activity's: a cancellation cuts the response and kills the server's query. */
  cancellationSignal: AbortSignal;
}

/** One partition, already counted: the export streamed into the upload. */
export async function exportPartition(
  job: TableExport,
  key: string,
  partition: CountedPartition,
  onBytes: (bytes: number) => void,
): Promise<BackupPiece> {
  const { database, table, server, info } = job;
  const name = qualifiedName(database, table);
  const { where, by } = partitionSelection(info, partition);
  const query = `SELECT * FROM ${name}${where ? ` WHERE ${where}` : ''} FORMAT Native`;
  const started = new Date();
  let snapshotAt = started;
  let exported = await exportQuery(job, key, query, 'server', onBytes);
  let framedBy: 'server' | 'worker' = 'server';
  if (exported.framing.blocks === 0 && partition.counted > 0) {
    // ClickHouse 18.16 answers a compress=1 query whose result is smaller than its 1 MiB
    // output buffer with an empty body (it never flushes a buffer it has not filled). Such a
    // partition is small: read it uncompressed and frame it here into the same block format
    // (method "none"), so the object loads exactly like the others. Current releases send
    // the block and do not come here.
    snapshotAt = new Date();
    exported = await exportQuery(job, key, query, 'worker', onBytes, true);
    framedBy = 'worker';
  }
  const { stored, framing, queryId } = exported;
  const finished = new Date();
  return {
    component: 'clickhouse',
    name: `${database}.${table}/${partition.partitionId}`,
    key,
    size: stored.size,
    sha256: stored.sha256,
    rows: partition.counted,
    snapshotAt: snapshotAt.toISOString(),
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    details: {
      partition: partition.partition,
      partitionId: partition.partitionId,
      partitionKey: info.partitionKey,
      format: CLICKHOUSE_DATA_FORMAT,
      compression: CLICKHOUSE_DATA_COMPRESSION,
      restore: 'POST the object as the body of ?query=INSERT INTO <table> FORMAT Native&decompress=1',
      compressionMethods: framing.methods,
      compressedBlocks: framing.blocks,
      uncompressedBytes: framing.decompressedBytes,
      framedBy,
      selectedBy: by,
      // count() equalled system.parts' active rows, and those parts did not change while it
      // ran; settleRowsVerified adds whether they were still the same after the export.
      rowsVerified: partition.countVerified,
      countedFrom: { parts: partition.parts, partRows: partition.rows },
      ...(partition.countVerified ? {} : { activePartRows: partition.rows, rowsNote: partition.note }),
      serverVersion: server.version,
      queryId,
    },
  };
}

/**
 * Runs the export query and streams its response into the object at `key`. 'server': the
 * server compresses (compress=1) and the bytes are checked on the way; 'worker': the server
 * sends plain Native and the worker frames it into ClickHouse blocks.
 */
async function exportQuery(
  job: TableExport,
  key: string,
  query: string,
  framing: 'server' | 'worker',
  onBytes: (bytes: number) => void,
  rewrite = false,
): Promise<{ stored: StreamedObject; framing: CompressedStreamSummary; queryId: string }> {
  const { client, s3: s3Client, bucket, fresh, cancellationSignal } = job;
  const unit = `clickhouse ${job.database}.${job.table}`;
  if (!fresh || rewrite) await abortStaleUploads(s3Client, bucket, key);
  const queryId = `ballast-backup-${randomUUID()}`;
  const { stream: source } = await client.exec({
    query,
    query_id: queryId,
    // compress=1: ClickHouse's own LZ4 block format, cheap for the server. An HTTP URL
    // parameter, not a setting; 18.16 and current releases both accept it. HTTP (gzip)
    // compression stays off so the bytes stored are exactly what ClickHouse framed.
    clickhouse_settings: framing === 'server' ? { compress: 1, enable_http_compression: 0 } : { enable_http_compression: 0 },
    decompress_response_stream: false,
    abort_signal: cancellationSignal,
  });
  // The client stops listening to the abort signal once the response has started; a
  // cancellation while the body streams must cut it here (and stop the server's query).
  const onCancel = () => {
    source.destroy(new Error(`backup of ${unit} cancelled`));
    void client.command({ query: `KILL QUERY WHERE query_id = ${quoteString(queryId)} ASYNC` }).catch(() => undefined);
  };
  if (cancellationSignal.aborted) onCancel();
  cancellationSignal.addEventListener('abort', onCancel);
  try {
    let stored: StreamedObject;
    let summary: CompressedStreamSummary;
    if (framing === 'server') {
      // Checked on the way into the upload, not in a stream stage of its own: 18.16 answers in
      // 4 KiB chunks, and every stage costs per chunk.
      const check = new CompressedStreamCheck();
      stored = await uploadStream(s3Client, bucket, key, source, {
        onBytes,
        onChunk: (chunk) => check.push(chunk),
        beforeComplete: () => check.end(),
      });
      summary = check.summary!;
    } else {
      const framer = new BlockFramer();
      // Both settle before returning: the upload's own clean-up must finish before a failed or
      // cancelled activity reports back, or its parts could outlive the attempt.
      const [upload, read] = await Promise.allSettled([uploadStream(s3Client, bucket, key, framer, { onBytes }), pipeline(source, framer)]);
      if (read.status === 'rejected') throw read.reason;
      if (upload.status === 'rejected') throw upload.reason;
      stored = upload.value;
      summary = framer.summary!;
    }
    cancellationSignal.throwIfAborted();
    return { stored, framing: summary, queryId };
  } catch (err) {
    // Cancelled: report the cancellation itself, not the broken pipe it caused.
    if (cancellationSignal.aborted && cancellationSignal.reason instanceof Error) throw cancellationSignal.reason;
    throw err;
  } finally {
    cancellationSignal.removeEventListener('abort', onCancel);
  }
}

/**
 * Follows a compressed ClickHouse stream's block framing chunk by chunk; at the end it fails if
 * the stream was cut inside a block or ends with an exception ClickHouse wrote after the response
 * had started (HTTP status already 200), so neither becomes a "complete" piece.
 */
class CompressedStreamCheck {
  private readonly reader = new CompressedFrameReader();
  summary: CompressedStreamSummary | undefined;

  push(chunk: Buffer): void {
    this.reader.push(chunk);
  }

  end(): void {
    const summary = this.reader.end();
    const last = this.reader.lastBlockContent();
    const exception = last && trailingException(last);
    if (exception) throw new Error(`ClickHouse failed during the export: ${exception}`);
    this.summary = summary;
  }
}

/** Size of the blocks the worker frames (ClickHouse's own default block size). */
const WORKER_BLOCK_SIZE = 1024 * 1024;
const TAIL_SIZE = 8192;

/**
 * Frames plain Native bytes into ClickHouse compressed blocks of method "none" (checksummed with
 * CityHash128 like the server's), about 1 MiB each, so the object loads with decompress=1 like
 * every other. Fails at the end if the server appended an exception to the response.
 */
class BlockFramer extends Transform {
  private pending: Buffer[] = [];
  private pendingSize = 0;
  private tail: Buffer = Buffer.alloc(0);
  private readonly counts: CompressedStreamSummary = { blocks: 0, compressedBytes: 0, decompressedBytes: 0, methods: [] };
  summary: CompressedStreamSummary | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.tail = chunk.length >= TAIL_SIZE ? Buffer.from(chunk.subarray(chunk.length - TAIL_SIZE)) : Buffer.concat([this.tail, chunk]).subarray(-TAIL_SIZE);
    this.pending.push(chunk);
    this.pendingSize += chunk.length;
    if (this.pendingSize >= WORKER_BLOCK_SIZE) this.emitBlock();
    done();
  }

  override _flush(done: TransformCallback): void {
    const exception = trailingException(this.tail);
    if (exception) return done(new Error(`ClickHouse failed during the export: ${exception}`));
    if (this.pendingSize > 0) this.emitBlock();
    this.summary = this.counts;
    done();
  }

  private emitBlock(): void {
    const block = uncompressedBlock(Buffer.concat(this.pending));
    this.counts.blocks++;
    this.counts.compressedBytes += block.length;
    this.counts.decompressedBytes += this.pendingSize;
    this.counts.methods = ['none'];
    this.pending = [];
    this.pendingSize = 0;
    this.push(block);
  }
}
