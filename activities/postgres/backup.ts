import { Context } from '@temporalio/activity';
import pg from 'pg';
import type { BackupPiece, ComponentResult } from '../../contracts/backupTypes';
import { abortStaleUploads, backupKey, findCompletePiece, markPieceComplete, uploadFromFd } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';
import { keepHeartbeating } from '../common/heartbeat';
import { startProcessIntoFifo, withBufferedStdout } from '../common/process';
import { findPgTool } from './tools';
import { tableChecksums, tableRowCounts } from './tables';

// Content checksums (a full read of every row's text) are taken for tables up to this size only:
// they run beside pg_dump and would slow a big dump down; bigger tables are verified by count.
const CHECKSUM_MAX_ROWS = 1_000_000;

export interface PostgresBackupRequest {
  backupId: string;
  database: string;
}

export function createPostgresBackupActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    /**
     * Dumps one database with pg_dump in custom format (restorable by plain pg_restore) straight
     * into a multipart upload. Row counts per table are read in the same snapshot as the dump, by
     * handing pg_dump a snapshot exported from this transaction.
     */
    async backupPostgresDatabase({ backupId, database }: PostgresBackupRequest): Promise<ComponentResult> {
      const started = new Date();
      const s3 = connections.s3(300_000);
      const key = backupKey(backupId, 'postgres', `${database}.dump`);
      const unit = `postgres ${database}`;
      const client = new pg.Client(connections.postgres(database));
      // What pg_dump needs before it starts, begun beside the object store's look-ups: each is a
      // round trip or a program start, and a small database's backup is mostly these.
      const preparing = (async () => {
        await client.connect();
        const { rows } = await client.query<{ server_version_num: string }>('SHOW server_version_num');
        const serverMajor = Math.floor(Number(rows[0]!.server_version_num) / 10_000);
        return { serverMajor, pgDump: await findPgTool('pg_dump', serverMajor, config.backup.pgDumpPath) };
      })();
      // Awaited below; when an earlier attempt's piece is returned instead, only settled.
      preparing.catch(() => undefined);
      try {
        const [earlier] = await Promise.all([
          findCompletePiece(s3, bucket, key),
          // An upload a dead attempt left is garbage whether or not that attempt's piece completed.
          abortStaleUploads(s3, bucket, key),
        ]);
        if (earlier) return { component: 'postgres', unit, pieces: [earlier], resumed: true };
        const { serverMajor, pgDump } = await preparing;

        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        // The counts run beside pg_dump: one core for them, so parallel workers do not take
        // the core pg_dump's compression needs.
        await client.query('SET LOCAL max_parallel_workers_per_gather = 0');
        const { rows: snapshotRows } = await client.query<{ snapshot: string; at: Date }>(
          'SELECT pg_export_snapshot() AS snapshot, transaction_timestamp() AS at',
        );
        const { snapshot, at: snapshotAt } = snapshotRows[0]!;

        const dump = dumpToObject(pgDump.path, snapshot, database, key);
        const counts = await tableRowCounts(client);
        const checksums = await tableChecksums(
          client,
          Object.keys(counts).filter((t) => counts[t]! <= CHECKSUM_MAX_ROWS),
        );
        const stored = await dump;

        const finished = new Date();
        const piece: BackupPiece = {
          component: 'postgres',
          name: database,
          key,
          size: stored.size,
          sha256: stored.sha256,
          rows: Object.values(counts).reduce((a, b) => a + b, 0),
          snapshotAt: snapshotAt.toISOString(),
          startedAt: started.toISOString(),
          finishedAt: finished.toISOString(),
          durationMs: finished.getTime() - started.getTime(),
          details: { format: 'pg_dump custom (-Fc)', pgDump: pgDump.version, serverMajor, tableRows: counts, tableChecksums: checksums },
        };
        // The read-only transaction only held the snapshot: its end need not come first.
        await Promise.all([client.query('COMMIT'), markPieceComplete(s3, bucket, piece)]);
        return { component: 'postgres', unit, pieces: [piece], resumed: false };
      } finally {
        // Ending the client first cuts a connection still being made when an earlier piece returned.
        await client.end().catch(() => undefined);
        await preparing.catch(() => undefined);
        s3.destroy();
      }

      async function dumpToObject(pgDumpPath: string, snapshot: string, db: string, objectKey: string) {
        const pgConfig = connections.postgres(db);
        const { command, args } = withBufferedStdout(pgDumpPath, [
          '--format=custom',
          `--snapshot=${snapshot}`,
          '--no-password',
          ...['--host', pgConfig.host, '--port', String(pgConfig.port), '--username', pgConfig.user, '--dbname', db],
        ]);
        const dump = await startProcessIntoFifo(`pg_dump of ${db}`, command, args, {
          env: { ...process.env, PGPASSWORD: pgConfig.password ?? '' },
          cancelSignal: Context.current().cancellationSignal,
        });
        let bytesSoFar = 0;
        const stopHeartbeats = keepHeartbeating(() => ({ bytes: bytesSoFar }));
        try {
          // The object is completed only once pg_dump has exited 0.
          return await uploadFromFd(s3, bucket, objectKey, dump.fd, dump.done, {
            onBytes: (bytes) => {
              bytesSoFar = bytes;
            },
          });
        } catch (err) {
          dump.kill();
          throw err;
        } finally {
          stopHeartbeats();
          dump.close();
        }
      }
    },
  };
}
