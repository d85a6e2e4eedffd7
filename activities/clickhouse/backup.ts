import { randomUUID } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { BackupPiece, ComponentResult } from '../../contracts/backupTypes';
import {
  abortStaleUploads,
  backupKey,
  findCompletePiece,
  hasObjectsUnder,
  markPieceComplete,
  uploadStream,
  type StreamedObject,
} from '../storage/backupObjects';
import { throttledHeartbeat } from '../common/heartbeat';
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
} from './sql';
import { mapLimit } from '../../contracts/concurrency';
import type { ActivityDeps } from '../deps';
import { Failure } from '../../contracts/failures';

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
        throw ApplicationFailure.nonRetryable(`backupClickHouseTable: ${(err as Error).message}`, Failure.InvalidInput);
      }
      const ctx = Context.current();
      const unit = `clickhouse ${database}.${table}`;
      const name = qualifiedName(database, table);
      const earlier = readProgress(ctx.info.heartbeatDetails);
      if (earlier) ctx.log.info(`${unit}: resuming after ${earlier.partitionsDone} partition(s), ${earlier.bytes} bytes`);

      const ch = connections.clickhouse();
      const s3 = connections.s3(300_000);
      let fresh = false;
      try {
        const server = await detectServer(ch);
        const info = await readTable(ch, server, database, table);
        const pieces: BackupPiece[] = [];
        let resumed = false;

        // A first attempt into a table folder that holds nothing has no earlier pieces to find and
        // no abandoned uploads to abort: skipping those look-ups saves round trips per partition.
        // Anything else (a retry, a reset workflow) checks every piece.
        const tablePrefix = backupKey(backupId, 'clickhouse', database, table, 'schema.sql').replace(/schema\.sql$/, '');
        fresh = ctx.info.attempt === 1 && !(await hasObjectsUnder(s3, bucket, tablePrefix));
        const findEarlier = (key: string) => (fresh ? Promise.resolve(undefined) : findCompletePiece(s3, bucket, key));

        // The schema: SHOW CREATE TABLE, as the server prints it.
        const schemaKey = backupKey(backupId, 'clickhouse', database, table, 'schema.sql');
        const foundSchema = await findEarlier(schemaKey);
        const mergeTree = isMergeTreeFamily(info.engine);
        if (foundSchema) {
          resumed = true;
          pieces.push(foundSchema);
        } else {
          const started = new Date();
          const statement = await showCreateTable(ch, name);
          if (!fresh) await abortStaleUploads(s3, bucket, schemaKey);
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

        // The data, one object per partition, each counted before it is exported.
        const counted = await countPartitions(ch, name, database, table, info);
        const progress: ClickHouseBackupProgress = { partitionsDone: 0, partitionsTotal: counted.length, bytes: 0, done: [] };
        const inFlight = new Map<string, number>();
        const beat = throttledHeartbeat(() => ({ ...progress, bytes: progress.bytes + [...inFlight.values()].reduce((a, b) => a + b, 0) }));
        // No heartbeat here: the first chunk's beat goes out at once (the throttle starts open),
        // so progress shows as soon as data moves.
        // A few partitions at once: each one's fixed cost (object store round trips, the time to
        // the first byte) would otherwise dominate a table of many small partitions.
        const partitionPieces = await mapLimit(counted, PARTITION_CONCURRENCY, async (partition) => {
          const key = backupKey(backupId, 'clickhouse', database, table, `${partition.partitionId}.native`);
          let piece = await findEarlier(key);
          if (piece) {
            resumed = true;
          } else {
            piece = await exportPartition(ch, s3, server, info, key, partition, (bytes) => {
              inFlight.set(partition.partitionId, bytes);
              beat();
            });
            await markPieceComplete(s3, bucket, piece);
          }
          inFlight.delete(partition.partitionId);
          progress.partitionsDone++;
          progress.bytes += piece.size;
          progress.done!.push(partition.partitionId);
          beat.now();
          return piece;
        });
        // The active parts once more, after every export: a partition whose parts are still the
        // ones it was counted from was not changed while it was read, so its object holds exactly
        // `rows`. One read per table, not per partition: system.parts is slow on old servers.
        const after = new Map((await listPartitions(ch, database, table)).map((p) => [p.partitionId, p]));
        for (const piece of partitionPieces) settleRowsVerified(piece, after);
        pieces.push(...partitionPieces);
        return { component: 'clickhouse', unit, pieces, resumed };
      } finally {
        await ch.close().catch(() => undefined);
        s3.destroy();
      }

      /** One partition, already counted: the export streamed into the upload. */
      async function exportPartition(
        client: ClickHouseClient,
        s3Client: S3Client,
        server: ServerCapabilities,
        info: TableInfo,
        key: string,
        partition: CountedPartition,
        onBytes: (bytes: number) => void,
      ): Promise<BackupPiece> {
        const { where, by } = partitionSelection(info, partition);
        const query = `SELECT * FROM ${name}${where ? ` WHERE ${where}` : ''} FORMAT Native`;
        const started = new Date();
        let snapshotAt = started;
        let exported = await exportQuery(client, s3Client, key, query, 'server', onBytes);
        let framedBy: 'server' | 'worker' = 'server';
        if (exported.framing.blocks === 0 && partition.counted > 0) {
          // ClickHouse 18.16 answers a compress=1 query whose result is smaller than its 1 MiB
          // output buffer with an empty body (it never flushes a buffer it has not filled). Such a
          // partition is small: read it uncompressed and frame it here into the same block format
          // (method "none"), so the object loads exactly like the others. Current releases send
          // the block and do not come here.
          snapshotAt = new Date();
          exported = await exportQuery(client, s3Client, key, query, 'worker', onBytes, true);
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
        client: ClickHouseClient,
        s3Client: S3Client,
        key: string,
        query: string,
        framing: 'server' | 'worker',
        onBytes: (bytes: number) => void,
        rewrite = false,
      ): Promise<{ stored: StreamedObject; framing: CompressedStreamSummary; queryId: string }> {
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
          // Both settle before returning: the upload's own clean-up must finish before a failed or
          // cancelled activity reports back, or its parts could outlive the attempt.
          const [upload, read] = await Promise.allSettled([uploadStream(s3Client, bucket, key, through, onBytes), pipeline(source, through)]);
          if (read.status === 'rejected') throw read.reason;
          if (upload.status === 'rejected') throw upload.reason;
          const stored = upload.value;
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
  if (!row) throw ApplicationFailure.nonRetryable(`clickhouse table ${database}.${table} does not exist`, Failure.TableNotFound);
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

interface PartitionSelection {
  where?: string;
  by: 'whole table' | 'partition expression' | '_partition_id';
}

/**
 * How to select one partition's rows. `(<PARTITION BY expression>) = <system.parts.partition
 * literal>` first: every version prunes the other partitions with it. `_partition_id = '<id>'` only
 * when no such condition can be written: 18.16 has the column but reads the whole table for it.
 * Unpartitioned tables (partition id 'all', partition 'tuple()') need no condition.
 */
function partitionSelection(info: TableInfo, partition: PartitionInfo): PartitionSelection {
  if (partition.partition === 'tuple()' || (partition.partitionId === 'all' && !info.partitionKey)) return { by: 'whole table' };
  let condition: string | undefined;
  try {
    condition = partitionCondition(info.partitionKey, partition.partition);
  } catch (err) {
    if (!info.partitionIdColumn) throw err;
  }
  if (condition) return { where: condition, by: 'partition expression' };
  if (info.partitionIdColumn) return { where: `_partition_id = ${quoteString(partition.partitionId)}`, by: '_partition_id' };
  throw new Error(`cannot select partition ${partition.partitionId}: no partition expression known`);
}

/** A partition as counted before its export. */
interface CountedPartition extends PartitionInfo {
  /** count() through the export's WHERE: the rows its object holds. */
  counted: number;
  /** `counted` equalled the active parts' rows, and those parts did not change while it ran. */
  countVerified: boolean;
  note?: string;
}

/** How many partitions one counting query covers, to keep the query text bounded. */
const COUNT_BATCH = 50;

/**
 * Every partition's count() through the same WHERE as its export, checked against system.parts'
 * active rows read on both sides of it. When they differ on partitions that did not change, the
 * whole table tells why: if its count() equals its parts' rows, a WHERE does not select exactly its
 * partition (the partition expression was rendered wrong)
 * and the backup fails rather than record wrong data; if the whole table differs too, this user
 * reads fewer rows than are stored (row filters, lightweight deletes on current releases) and
 * `counted` is what the export holds.
 */
async function countPartitions(
  client: ClickHouseClient,
  name: string,
  database: string,
  table: string,
  info: TableInfo,
): Promise<CountedPartition[]> {
  let before = await listPartitions(client, database, table);
  let counted: CountedPartition[] = [];
  for (let attempt = 0; attempt < COUNT_ATTEMPTS; attempt++) {
    const each = await countWhere(client, name, before.map((p) => partitionSelection(info, p).where));
    const after = new Map((await listPartitions(client, database, table)).map((p) => [p.partitionId, p]));
    const stable = (p: PartitionInfo) => after.get(p.partitionId)?.rows === p.rows && after.get(p.partitionId)?.parts === p.parts;
    counted = before.map((p, i) => ({ ...p, counted: each[i]!, countVerified: stable(p) && each[i] === p.rows }));
    const mismatched = counted.filter((p) => stable(p) && !p.countVerified);
    if (mismatched.length > 0) {
      const stored = before.reduce((n, p) => n + p.rows, 0);
      const wrong = mismatched[0]!;
      const where = partitionSelection(info, wrong).where;
      if (where && before.every(stable) && (await countWhere(client, name, [undefined]))[0] === stored) {
        throw new Error(
          `${database}.${table} partition ${wrong.partitionId}: the export's WHERE (${where}) counts ${wrong.counted} rows, system.parts has ${wrong.rows}`,
        );
      }
      for (const p of mismatched) {
        p.note = 'this user reads fewer rows than the parts hold (row filters or deleted rows): rows counts what was exported';
      }
    }
    if (before.every(stable)) return counted;
    before = [...after.values()].filter((p) => before.some((b) => b.partitionId === p.partitionId));
  }
  for (const p of counted) if (!p.countVerified && !p.note) p.note = 'the partition changed while it was counted (inserts or merges)';
  return counted;
}

/**
 * count() through each condition (undefined: the whole table), as one UNION ALL per batch: one
 * round trip, and each branch still prunes to its own partition, which countIf() would not.
 */
async function countWhere(client: ClickHouseClient, name: string, conditions: (string | undefined)[]): Promise<number[]> {
  const counts: number[] = [];
  for (let at = 0; at < conditions.length; at += COUNT_BATCH) {
    const batch = conditions.slice(at, at + COUNT_BATCH);
    const query = batch
      .map((c, i) => `SELECT ${at + i} AS i, count() AS n FROM ${name}${c ? ` WHERE ${c}` : ''}`)
      .join(' UNION ALL ');
    for (const row of await rows<{ i: string | number; n: string | number }>(client, query)) counts[Number(row.i)] = Number(row.n);
  }
  return conditions.map((_, i) => counts[i] ?? 0);
}

/**
 * Final say on a partition piece's row count: verified when it was counted exactly and its active
 * parts are still the ones it was counted from (no insert or merge touched it since).
 */
function settleRowsVerified(piece: BackupPiece, now: Map<string, PartitionInfo>): void {
  const details = piece.details as { partitionId: string; rowsVerified: boolean; countedFrom: { parts: number; partRows: number } };
  const current = now.get(details.partitionId);
  const unchanged = current?.rows === details.countedFrom.partRows && current?.parts === details.countedFrom.parts;
  if (!unchanged) {
    details.rowsVerified = false;
    Object.assign(details, { changedDuringExport: { rowsAfter: current?.rows ?? 0, partsAfter: current?.parts ?? 0 } });
  }
}
