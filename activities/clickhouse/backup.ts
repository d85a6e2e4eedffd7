import { Readable } from 'node:stream';
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
} from '../storage/backupObjects';
import { throttledHeartbeat } from '../common/heartbeat';
import { isMergeTreeFamily, qualifiedName, validateName } from './sql';
import { detectServer, readTable, showCreateTable } from './tableInfo';
import { countPartitions, listPartitions, settleRowsVerified } from './partitions';
import { exportPartition, type TableExport } from './partitionExport';
import { mapLimit } from '../../contracts/concurrency';
import type { ActivityDeps } from '../deps';
import { Failure } from '../../contracts/failures';

export interface ClickHouseBackupRequest {
  backupId: string;
  database: string;
  table: string;
  /** Only these partition ids (a narrowed backup, e.g. before a drop); every partition when absent. */
  partitions?: string[];
}

/** Heartbeat details: progress for the UI, and where a retried attempt picks up. */
export interface ClickHouseBackupProgress {
  partitionsDone: number;
  partitionsTotal?: number;
  bytes: number;
  /** Partition ids whose pieces are complete (marker written). */
  done?: string[];
}

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
     * Idempotent per piece: a retry keeps the pieces an earlier attempt completed. With
     * `partitions`, only those partitions' objects are written.
     */
    async backupClickHouseTable({ backupId, database, table, partitions: only }: ClickHouseBackupRequest): Promise<ComponentResult> {
      try {
        validateName(database, 'database');
        validateName(table, 'table');
        if (only !== undefined && (!Array.isArray(only) || only.length === 0 || !only.every((id) => typeof id === 'string' && id !== ''))) {
          throw new Error('partitions must be a non-empty list of partition ids');
        }
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
      try {
        const server = await detectServer(ch);
        const info = await readTable(ch, server, database, table);
        const pieces: BackupPiece[] = [];
        let resumed = false;

        // A first attempt into a table folder that holds nothing has no earlier pieces to find and
        // no abandoned uploads to abort: skipping those look-ups saves round trips per partition.
        // Anything else (a retry, a reset workflow) checks every piece.
        const tablePrefix = backupKey(backupId, 'clickhouse', database, table, 'schema.sql').replace(/schema\.sql$/, '');
        const fresh = ctx.info.attempt === 1 && !(await hasObjectsUnder(s3, bucket, tablePrefix));
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
        const wanted = only && new Set(only);
        const counted = await countPartitions(ch, name, database, table, info, wanted);
        if (wanted) {
          // Planned a moment ago: a partition gone since cannot be in this backup, and a backup
          // taken to undo a drop must hold every partition it was asked for.
          const missing = [...wanted].filter((id) => !counted.some((p) => p.partitionId === id));
          if (missing.length) {
            throw ApplicationFailure.nonRetryable(`backupClickHouseTable: partitions: ${database}.${table} has no partition ${missing.join(', ')} (any more)`, Failure.InvalidInput);
          }
        }
        const job: TableExport = { client: ch, s3, bucket, database, table, server, info, fresh, cancellationSignal: ctx.cancellationSignal };
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
            piece = await exportPartition(job, key, partition, (bytes) => {
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
    },
  };
}

function readProgress(details: unknown): ClickHouseBackupProgress | undefined {
  const d = details as Partial<ClickHouseBackupProgress> | undefined;
  return d && typeof d.partitionsDone === 'number' && typeof d.bytes === 'number' ? (d as ClickHouseBackupProgress) : undefined;
}
