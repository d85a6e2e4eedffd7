import { randomUUID } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { BackupPiece, ComponentResult } from '../workflows/backupTypes';
import { abortStaleUploads, backupKey, findCompletePiece, markPieceComplete, uploadStream, type StreamedObject } from './backupObjects';
import {
  CompressedFrameReader,
  isMergeTreeFamily,
  partitionCondition,
  partitionExpression,
  qualifiedName,
  quoteString,
  trailingException,
  uncompressedBlock,
  validateName,
  type CompressedStreamSummary,
} from './clickhouseSql';
import { mapBounded } from '../workflows/concurrency';
import type { ActivityDeps } from './deps';

export interface ClickHouseBackupRequest {
  backupId: string;
  database: string;
  table: string;
}

/** Heartbeat details: progress for the UI, and where a retried attempt picks up. */
export interface ClickHouseBackupProgress {
  partitionsDone: number;
  partitionsTotal?: number;
  bytes: number;
  /** Partition ids whose pieces are complete (marker written). */
  done?: string[];
}

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

/** What the server at hand can do; decided once per activity. */
interface ServerCapabilities {
  version: string;
  /**
   * system.tables.partition_key: current releases and the stack's 18.16.1 have it; older servers
   * do not, and the key is then parsed from engine_full.
   */
  partitionKeyColumn: boolean;
  /** system.tables.create_table_query: not guaranteed on old servers. */
  createTableQueryColumn: boolean;
}

interface TableInfo {
  engine: string;
  engineFull: string;
  createTableQuery: string;
  /** The PARTITION BY expression, '' when unpartitioned or not MergeTree. */
  partitionKey: string;
  /**
   * Whether `_partition_id` can be selected: current releases (probed, not guessed from the
   * version); 18.16 has no such virtual column and selects by the partition expression instead.
   */
  partitionIdColumn: boolean;
}

interface PartitionInfo {
  partitionId: string;
  /** system.parts' `partition`: a SQL literal such as 202601, '2026-01-01', (202601, 'eu'), tuple(). */
  partition: string;
  rows: number;
  parts: number;
}

/** How many times to re-read counts when a partition changes between the reads. */
const COUNT_ATTEMPTS = 3;
const PARTITION_CONCURRENCY = 3;

export function createClickHouseBackupActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    /**
     * Backs up one ClickHouse table into `backups/<backupId>/clickhouse/<db>/<table>/`: its
     * `SHOW CREATE TABLE` text as schema.sql, and, for MergeTree-family tables, one object per
     * partition, `<partition_id>.native`: `SELECT * ... FORMAT Native` in ClickHouse's own
     * compressed block format (`compress=1`), streamed from the HTTP response into the upload.
     * Idempotent per piece: a retry keeps the pieces an earlier attempt completed.
     */
    async backupClickHouseTable({ backupId, database, table }: ClickHouseBackupRequest): Promise<ComponentResult> {
      try {
        validateName(database, 'database');
        validateName(table, 'table');
        // Checks the backup id and the key parts before anything is read or written.
        backupKey(backupId, 'clickhouse', database, table, 'schema.sql');
      } catch (err) {
        throw ApplicationFailure.nonRetryable(`backupClickHouseTable: ${(err as Error).message}`, 'InvalidInput');
      }
      const ctx = Context.current();
      const unit = `clickhouse ${database}.${table}`;
      const name = qualifiedName(database, table);
      const earlier = readProgress(ctx.info.heartbeatDetails);
      if (earlier) ctx.log.info(`${unit}: resuming after ${earlier.partitionsDone} partition(s), ${earlier.bytes} bytes`);

      const ch = connections.clickhouse();
      const s3 = connections.s3(300_000);
      try {
        const server = await detectServer(ch);
        const info = await readTable(ch, server, database, table);
        const pieces: BackupPiece[] = [];
        let resumed = false;

        // The schema: SHOW CREATE TABLE, as the server prints it.
        const schemaKey = backupKey(backupId, 'clickhouse', database, table, 'schema.sql');
        const foundSchema = await findCompletePiece(s3, bucket, schemaKey);
        const mergeTree = isMergeTreeFamily(info.engine);
        if (foundSchema) {
          resumed = true;
          pieces.push(foundSchema);
        } else {
          const started = new Date();
          const statement = await showCreateTable(ch, name);
          await abortStaleUploads(s3, bucket, schemaKey);
          const stored = await uploadStream(s3, bucket, schemaKey, Readable.from([Buffer.from(statement, 'utf8')]));
          const finished = new Date();
          const piece: BackupPiece = {
            component: 'clickhouse',
            name: `${database}.${table}/schema`,
            key: schemaKey,
            size: stored.size,
            sha256: stored.sha256,
            snapshotAt: started.toISOString(),
            startedAt: started.toISOString(),
            finishedAt: finished.toISOString(),
            durationMs: finished.getTime() - started.getTime(),
            details: {
              engine: info.engine,
              partitionKey: info.partitionKey,
              engineFull: info.engineFull,
              serverVersion: server.version,
              dataExported: mergeTree,
              ...(mergeTree
                ? {}
                : { dataSkippedReason: `engine ${info.engine} is not of the MergeTree family: only its schema is backed up` }),
            },
          };
          await markPieceComplete(s3, bucket, piece);
          pieces.push(piece);
        }
        if (!mergeTree) return { component: 'clickhouse', unit, pieces, resumed };

        // The data, one object per partition.
        const partitions = await listPartitions(ch, database, table);
        const progress: ClickHouseBackupProgress = { partitionsDone: 0, partitionsTotal: partitions.length, bytes: 0, done: [] };
        const beat = (inFlight = 0) => ctx.heartbeat({ ...progress, bytes: progress.bytes + inFlight });
        beat();
        // A few partitions at once: each one's fixed cost (counts, object store round trips)
        // would otherwise dominate a table of many small partitions.
        const partitionPieces = await mapBounded(partitions, PARTITION_CONCURRENCY, async (partition) => {
          const key = backupKey(backupId, 'clickhouse', database, table, `${partition.partitionId}.native`);
          let piece = await findCompletePiece(s3, bucket, key);
          if (piece) {
            resumed = true;
          } else {
            piece = await exportPartition(ch, s3, server, info, key, partition, (bytes) => beat(bytes));
            await markPieceComplete(s3, bucket, piece);
          }
          progress.partitionsDone++;
          progress.bytes += piece.size;
          progress.done!.push(partition.partitionId);
          beat();
          return piece;
        });
        pieces.push(...partitionPieces);
        return { component: 'clickhouse', unit, pieces, resumed };
      } finally {
        await ch.close().catch(() => undefined);
        s3.destroy();
      }

      /**
       * One partition: counts first (and compares them with system.parts), then the export
       * streamed into the upload, then system.parts again to tell whether the partition changed
       * while it was read.
       */
      async function exportPartition(
        client: ClickHouseClient,
        s3Client: S3Client,
        server: ServerCapabilities,
        info: TableInfo,
        key: string,
        partition: PartitionInfo,
        onBytes: (bytes: number) => void,
      ): Promise<BackupPiece> {
        const where = partitionWhere(info, partition);
        const query = `SELECT * FROM ${name}${where ? ` WHERE ${where}` : ''} FORMAT Native`;
        const started = new Date();
        const counted = await countPartition(client, name, database, table, partition.partitionId, where);

        let snapshotAt = new Date();
        let exported = await exportQuery(client, s3Client, key, query, 'server', onBytes);
        let framedBy: 'server' | 'worker' = 'server';
        if (exported.framing.blocks === 0 && counted.rows > 0) {
          // ClickHouse 18.16 answers a compress=1 query whose result is smaller than its 1 MiB
          // output buffer with an empty body (it never flushes a buffer it has not filled). Such a
          // partition is small: read it uncompressed and frame it here into the same block format
          // (method "none"), so the object loads exactly like the others. Current releases send
          // the block and do not come here.
          snapshotAt = new Date();
          exported = await exportQuery(client, s3Client, key, query, 'worker', onBytes);
          framedBy = 'worker';
        }
        const { stored, framing, queryId } = exported;

        const after = await partRows(client, database, table, partition.partitionId);
        const finished = new Date();
        const unchanged = after.rows === counted.partRows && after.parts === counted.parts;
        return {
          component: 'clickhouse',
          name: `${database}.${table}/${partition.partitionId}`,
          key,
          size: stored.size,
          sha256: stored.sha256,
          rows: counted.rows,
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
            selectedBy: where ? (info.partitionIdColumn ? '_partition_id' : 'partition expression') : 'whole table',
            // count() of the partition equalled system.parts' active rows right before the export,
            // and the active parts were the same right after it: the object holds exactly `rows`.
            rowsVerified: counted.verified && unchanged,
            ...(unchanged ? {} : { changedDuringExport: { rowsAfter: after.rows, partsAfter: after.parts } }),
            ...(counted.verified ? {} : { activePartRows: counted.partRows, rowsNote: counted.note }),
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
        client: ClickHouseClient,
        s3Client: S3Client,
        key: string,
        query: string,
        framing: 'server' | 'worker',
        onBytes: (bytes: number) => void,
      ): Promise<{ stored: StreamedObject; framing: CompressedStreamSummary; queryId: string }> {
        await abortStaleUploads(s3Client, bucket, key);
        const queryId = `ballast-backup-${randomUUID()}`;
        const { stream: source } = await client.exec({
          query,
          query_id: queryId,
          // compress=1: ClickHouse's own LZ4 block format, cheap for the server. An HTTP URL
          // parameter, not a setting; 18.16 and current releases both accept it. HTTP (gzip)
          // compression stays off so the bytes stored are exactly what ClickHouse framed.
          clickhouse_settings: framing === 'server' ? { compress: 1, enable_http_compression: 0 } : { enable_http_compression: 0 },
          decompress_response_stream: false,
          abort_signal: ctx.cancellationSignal,
        });
        // The client stops listening to the abort signal once the response has started; a
        // cancellation while the body streams must cut it here (and stop the server's query).
        const onCancel = () => {
          source.destroy(new Error(`backup of ${unit} cancelled`));
          void client.command({ query: `KILL QUERY WHERE query_id = ${quoteString(queryId)} ASYNC` }).catch(() => undefined);
        };
        if (ctx.cancellationSignal.aborted) onCancel();
        ctx.cancellationSignal.addEventListener('abort', onCancel);
        try {
          const through = framing === 'server' ? new CompressedStreamCheck() : new BlockFramer();
          const [stored] = await Promise.all([uploadStream(s3Client, bucket, key, through, onBytes), pipeline(source, through)]);
          ctx.cancellationSignal.throwIfAborted();
          return { stored, framing: through.summary!, queryId };
        } catch (err) {
          // Cancelled: report the cancellation itself, not the broken pipe it caused.
          if (ctx.cancellationSignal.aborted && ctx.cancellationSignal.reason instanceof Error) throw ctx.cancellationSignal.reason;
          throw err;
        } finally {
          ctx.cancellationSignal.removeEventListener('abort', onCancel);
        }
      }
    },
  };
}

/**
 * Passes a compressed ClickHouse stream through unchanged while checking its block framing; at
 * the end it fails if the stream was cut inside a block or ends with an exception ClickHouse wrote
 * after the response had started (HTTP status already 200), so neither becomes a "complete" piece.
 */
class CompressedStreamCheck extends Transform {
  private readonly reader = new CompressedFrameReader();
  summary: CompressedStreamSummary | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.reader.push(chunk);
      done(null, chunk);
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.summary = this.reader.end();
      const last = this.reader.lastBlockContent();
      const exception = last && trailingException(last);
      if (exception) throw new Error(`ClickHouse failed during the export: ${exception}`);
      done();
    } catch (err) {
      done(err as Error);
    }
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

function readProgress(details: unknown): ClickHouseBackupProgress | undefined {
  const d = details as Partial<ClickHouseBackupProgress> | undefined;
  return d && typeof d.partitionsDone === 'number' && typeof d.bytes === 'number' ? (d as ClickHouseBackupProgress) : undefined;
}

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  const result = await client.query({ query, format: 'JSONEachRow' });
  return result.json<T>();
}

/** The server's version and which system.tables columns it has. */
async function detectServer(client: ClickHouseClient): Promise<ServerCapabilities> {
  const [version] = await rows<{ version: string }>(client, 'SELECT version() AS version');
  const columns = new Set(
    (await rows<{ name: string }>(client, "SELECT name FROM system.columns WHERE database = 'system' AND table = 'tables'")).map(
      (c) => c.name,
    ),
  );
  return {
    version: version?.version ?? 'unknown',
    partitionKeyColumn: columns.has('partition_key'),
    createTableQueryColumn: columns.has('create_table_query'),
  };
}

/** The table's engine and partition key; fails non-retryably when the table does not exist. */
async function readTable(
  client: ClickHouseClient,
  server: ServerCapabilities,
  database: string,
  table: string,
): Promise<TableInfo> {
  const columns = [
    'engine',
    'engine_full',
    server.createTableQueryColumn ? 'create_table_query' : "'' AS create_table_query",
    // The server's own partition key text where it has the column (current releases, 18.16.1);
    // parsed from engine_full below on servers without it.
    server.partitionKeyColumn ? 'partition_key' : "'' AS partition_key",
  ];
  const [row] = await rows<{ engine: string; engine_full: string; create_table_query: string; partition_key: string }>(
    client,
    `SELECT ${columns.join(', ')} FROM system.tables WHERE database = ${quoteString(database)} AND name = ${quoteString(table)}`,
  );
  if (!row) throw ApplicationFailure.nonRetryable(`clickhouse table ${database}.${table} does not exist`, 'TableNotFound');
  const mergeTree = isMergeTreeFamily(row.engine);
  let partitionKey = '';
  if (mergeTree) {
    partitionKey = server.partitionKeyColumn
      ? row.partition_key
      : partitionExpression(row.engine, row.engine_full || row.create_table_query || (await showCreateTable(client, qualifiedName(database, table))));
  }
  return {
    engine: row.engine,
    engineFull: row.engine_full,
    createTableQuery: row.create_table_query,
    partitionKey,
    partitionIdColumn: mergeTree && (await hasPartitionIdColumn(client, qualifiedName(database, table))),
  };
}

/**
 * Whether the `_partition_id` virtual column exists: current releases have it, 18.16 answers
 * "Unknown identifier" (code 47). Probed rather than guessed from the version number.
 */
async function hasPartitionIdColumn(client: ClickHouseClient, name: string): Promise<boolean> {
  try {
    await rows(client, `SELECT _partition_id FROM ${name} LIMIT 0`);
    return true;
  } catch (err) {
    const code = String((err as { code?: unknown }).code ?? '');
    if (code === '47' || /Unknown identifier|Missing columns/i.test((err as Error).message)) return false;
    throw err;
  }
}

async function showCreateTable(client: ClickHouseClient, name: string): Promise<string> {
  const [row] = await rows<{ statement: string }>(client, `SHOW CREATE TABLE ${name}`);
  if (!row?.statement) throw new Error(`SHOW CREATE TABLE ${name} returned nothing`);
  return row.statement;
}

/** Active partitions with their row and part counts, from system.parts. */
async function listPartitions(client: ClickHouseClient, database: string, table: string): Promise<PartitionInfo[]> {
  const found = await rows<{ partition_id: string; partition: string; rows: string | number; parts: string | number }>(
    client,
    `SELECT partition_id, any(partition) AS partition, sum(rows) AS rows, count() AS parts FROM system.parts
     WHERE database = ${quoteString(database)} AND table = ${quoteString(table)} AND active
     GROUP BY partition_id ORDER BY partition_id`,
  );
  return found.map((p) => ({ partitionId: p.partition_id, partition: p.partition, rows: Number(p.rows), parts: Number(p.parts) }));
}

/** Rows and parts of one partition's active parts, now. */
async function partRows(
  client: ClickHouseClient,
  database: string,
  table: string,
  partitionId: string,
): Promise<{ rows: number; parts: number }> {
  const [row] = await rows<{ rows: string | number; parts: string | number }>(
    client,
    `SELECT sum(rows) AS rows, count() AS parts FROM system.parts
     WHERE database = ${quoteString(database)} AND table = ${quoteString(table)} AND active AND partition_id = ${quoteString(partitionId)}`,
  );
  return { rows: Number(row?.rows ?? 0), parts: Number(row?.parts ?? 0) };
}

/**
 * The WHERE condition selecting one partition, or undefined for the whole table.
 * - current releases: `_partition_id = '<id>'`, exact whatever the key;
 * - 18.16: `(<PARTITION BY expression>) = <system.parts.partition literal>`.
 * Unpartitioned tables (partition id 'all', partition 'tuple()') need none.
 */
function partitionWhere(info: TableInfo, partition: PartitionInfo): string | undefined {
  if (partition.partition === 'tuple()' || (partition.partitionId === 'all' && !info.partitionKey)) return undefined;
  if (info.partitionIdColumn) return `_partition_id = ${quoteString(partition.partitionId)}`;
  const condition = partitionCondition(info.partitionKey, partition.partition);
  if (!condition) throw new Error(`cannot select partition ${partition.partitionId}: no partition expression known`);
  return condition;
}

/**
 * count() of the partition through the same WHERE as the export, checked against system.parts'
 * active rows read around it. When they differ on a partition that did not change, the whole
 * table tells why: if its count() equals its parts' rows, the WHERE does not select exactly the
 * partition (the 18.16 expression branch got it wrong) and the backup fails rather than record
 * wrong data; if the whole table differs too, this user reads fewer rows than are stored (row
 * filters, lightweight deletes on current releases) and `rows` is what the export holds.
 */
async function countPartition(
  client: ClickHouseClient,
  name: string,
  database: string,
  table: string,
  partitionId: string,
  where: string | undefined,
): Promise<{ rows: number; parts: number; partRows: number; verified: boolean; note?: string }> {
  const count = async (condition?: string) =>
    Number((await rows<{ n: string | number }>(client, `SELECT count() AS n FROM ${name}${condition ? ` WHERE ${condition}` : ''}`))[0]?.n ?? 0);
  let last: { rows: number; parts: number; partRows: number; verified: boolean; note?: string } = {
    rows: 0,
    parts: 0,
    partRows: 0,
    verified: false,
  };
  for (let attempt = 0; attempt < COUNT_ATTEMPTS; attempt++) {
    const before = await partRows(client, database, table, partitionId);
    const counted = await count(where);
    const after = await partRows(client, database, table, partitionId);
    const stable = before.rows === after.rows && before.parts === after.parts;
    last = { rows: counted, parts: after.parts, partRows: after.rows, verified: stable && counted === after.rows };
    if (last.verified) return last;
    if (!stable) continue;
    const [whole] = await rows<{ n: string | number }>(
      client,
      `SELECT sum(rows) AS n FROM system.parts WHERE database = ${quoteString(database)} AND table = ${quoteString(table)} AND active`,
    );
    if (where && (await count()) === Number(whole?.n ?? 0)) {
      throw new Error(
        `${database}.${table} partition ${partitionId}: the export's WHERE (${where}) counts ${counted} rows, system.parts has ${after.rows}`,
      );
    }
    return { ...last, note: 'this user reads fewer rows than the parts hold (row filters or deleted rows): rows counts what was exported' };
  }
  if (!last.verified) last.note = 'the partition changed while it was counted (inserts or merges)';
  return last;
}
