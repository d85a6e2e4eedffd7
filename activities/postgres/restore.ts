import type { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import pg from 'pg';
import type { BackupPiece } from '../../contracts/backupTypes';
import type { RestoreStepResult, VerifyCheck, VerifyResult } from '../../contracts/restoreTypes';
import type { ActivityDeps } from '../deps';
import { keepHeartbeating } from '../common/heartbeat';
import { startStreamingProcess } from '../common/process';
import { findPgTool } from './tools';
import { tableRowCounts, tableChecksums } from './tables';
import { Failure } from '../../contracts/failures';

export interface PostgresRestoreRequest {
  /** Identifies this restore run: the restored database carries it, so a retry knows its own work. */
  restoreId: string;
  database: string;
  target: string;
  piece: BackupPiece;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,39}$/;
const RESTORED_MARK = 'ballast restore ';

/**
 * The comment a restore leaves on the database it created: proof, for a retry, that the work is
 * done, and for a drill's teardown, that the database is the drill's own to drop.
 */
export function ownerMark(restoreId: string): string {
  return `${RESTORED_MARK}${restoreId}`;
}

/** Where an existing target database is renamed to, and kept, when a restore replaces it. */
export function asideName(target: string, restoreId: string): string {
  return `${target}_before_${restoreId.replace(/[^A-Za-z0-9]/g, '').slice(-8).toLowerCase()}`;
}

/** The scratch database a restore loads before it takes the target's name. */
export function loadingName(target: string): string {
  return `${target}__ballast_loading`;
}

export function createPostgresRestoreActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  const admin = async <T>(fn: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client(connections.postgres());
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  const exists = (client: pg.Client, name: string) =>
    client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]).then((r) => (r.rowCount ?? 0) > 0);

  /** Ends every session on a database, so it can be renamed or dropped. */
  const disconnect = (client: pg.Client, name: string) =>
    client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);

  return {
    /**
     * Restores one database dump with pg_restore, streamed from the backup bucket, into a fresh
     * scratch database; only a complete, clean load then takes the target's name. An existing
     * target is renamed aside (`<target>_before_<run>`), never dropped: the plan says so, and a
     * person drops it once satisfied. A retry drops the half-loaded scratch database and starts
     * again; a retry after the swap finds the target marked with this run and returns.
     */
    async restorePostgresDatabase({ restoreId, database, target, piece }: PostgresRestoreRequest): Promise<RestoreStepResult> {
      if (!IDENTIFIER.test(target)) {
        throw ApplicationFailure.nonRetryable(`restore target database ${JSON.stringify(target)} must be a plain identifier of at most 40 characters`, Failure.InvalidInput);
      }
      if (piece.component !== 'postgres' || !piece.key.endsWith('.dump')) {
        throw ApplicationFailure.nonRetryable(`piece ${piece.key} is not a Postgres dump`, Failure.InvalidInput);
      }
      const started = Date.now();
      const unit = `postgres ${database} -> ${target}`;
      const mark = ownerMark(restoreId);
      const scratch = loadingName(target);
      const aside = asideName(target, restoreId);

      const done = await admin(async (client) => {
        if (!(await exists(client, target))) return false;
        const { rows } = await client.query<{ comment: string | null }>(
          'SELECT shobj_description(oid, $2) AS comment FROM pg_database WHERE datname = $1',
          [target, 'pg_database'],
        );
        return rows[0]?.comment === mark;
      });
      if (done) {
        return { component: 'postgres', unit, bytes: piece.size, rows: piece.rows, durationMs: Date.now() - started, resumed: true, notes: [`${target} was already restored by this run`] };
      }

      const serverMajor = await admin(async (client) => {
        await disconnect(client, scratch);
        await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(scratch)}`);
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(scratch)} TEMPLATE template0`);
        const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
        return Math.floor(Number(rows[0]!.v) / 10_000);
      });
      const pgRestore = await findPgTool('pg_restore', serverMajor, config.restore.pgRestorePath);

      const s3 = connections.s3(3_600_000);
      let bytes = 0;
      const stopHeartbeats = keepHeartbeating(() => ({ phase: 'pg_restore', bytes, of: piece.size }), 5_000);
      try {
        const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: piece.key }));
        await runPgRestore(pgRestore.path, scratch, object.Body as Readable);
      } finally {
        stopHeartbeats();
        s3.destroy();
      }
      if (bytes !== piece.size) throw new Error(`read ${bytes} bytes of ${piece.key}, the manifest says ${piece.size}`);

      const notes: string[] = [];
      await admin(async (client) => {
        await client.query(`COMMENT ON DATABASE ${pg.escapeIdentifier(scratch)} IS ${pg.escapeLiteral(mark)}`);
        if (await exists(client, target)) {
          await disconnect(client, target);
          await client.query(`ALTER DATABASE ${pg.escapeIdentifier(target)} RENAME TO ${pg.escapeIdentifier(aside)}`);
          notes.push(`the existing database ${target} was renamed to ${aside} and kept: drop it once the restore is accepted`);
        }
        await disconnect(client, scratch);
        await client.query(`ALTER DATABASE ${pg.escapeIdentifier(scratch)} RENAME TO ${pg.escapeIdentifier(target)}`);
      });
      return { component: 'postgres', unit, bytes, rows: piece.rows, durationMs: Date.now() - started, notes };

      async function runPgRestore(tool: string, db: string, input: Readable): Promise<void> {
        const c = connections.postgres(db);
        const restore = await startStreamingProcess(
          `pg_restore into ${db}`,
          tool,
          ['--exit-on-error', '--no-password', '--host', c.host, '--port', String(c.port), '--username', c.user, '--dbname', db],
          { stdin: 'pipe', stdout: 'ignore' },
          { env: { ...process.env, PGPASSWORD: c.password ?? '' }, cancelSignal: Context.current().cancellationSignal },
        );
        let readFailure: Error | undefined;
        input.on('error', (err) => {
          readFailure = err;
          restore.kill();
        });
        // Counted only from here: a 'data' listener starts the stream flowing, and what flowed
        // before pg_restore was there to take it would be lost.
        input.on('data', (chunk: Buffer) => (bytes += chunk.length));
        // pg_restore exiting early (an error) closes its stdin: that is reported by its exit status.
        input.pipe(restore.stdin!);
        try {
          await restore.done;
        } catch (err) {
          if (!readFailure) throw err;
          throw new Error(`${(err as Error).message.trimEnd()}\nreading the dump failed: ${readFailure.message}`, { cause: err });
        }
      }
    },

    /** Row counts (and content checksums where the manifest has them) of the restored tables. */
    async verifyPostgresDatabase({ target, piece }: { target: string; piece: BackupPiece }): Promise<VerifyResult> {
      const details = (piece.details ?? {}) as { tableRows?: Record<string, number>; tableChecksums?: Record<string, string> };
      const client = new pg.Client(connections.postgres(target));
      await client.connect();
      const checks: VerifyCheck[] = [];
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const rows = await tableRowCounts(client);
        const expectedRows = details.tableRows ?? {};
        for (const table of [...new Set([...Object.keys(expectedRows), ...Object.keys(rows)])].sort()) {
          const expected = expectedRows[table] ?? 'absent';
          const actual = rows[table] ?? 'absent';
          checks.push({ name: `postgres ${target} ${table} rows`, expected, actual, ok: expected === actual });
        }
        const expectedSums = details.tableChecksums ?? {};
        const tables = Object.keys(expectedSums).filter((t) => t in rows);
        const sums = await tableChecksums(client, tables);
        for (const table of Object.keys(expectedSums).sort()) {
          const actual = sums[table] ?? 'absent';
          checks.push({ name: `postgres ${target} ${table} checksum`, expected: expectedSums[table]!, actual, ok: actual === expectedSums[table] });
        }
        await client.query('COMMIT');
      } finally {
        await client.end().catch(() => undefined);
      }
      return { component: 'postgres', unit: `postgres ${target}`, ok: checks.every((c) => c.ok), checks };
    },

    /**
     * Drill teardown: drops a scratch database, and its loading copy, only when it carries the
     * marker of the restore run that `owner` names. Never one the config names.
     */
    async dropPostgresDatabase({ database, owner }: { database: string; owner: string }): Promise<{ dropped: boolean }> {
      if (!IDENTIFIER.test(database) || config.postgres.databases.includes(database) || database === config.postgres.maintenanceDatabase) {
        throw ApplicationFailure.nonRetryable(`refusing to drop Postgres database ${JSON.stringify(database)}: not a scratch database`, Failure.InvalidInput);
      }
      return admin(async (client) => {
        let dropped = false;
        for (const name of [database, loadingName(database)]) {
          const { rows } = await client.query<{ comment: string | null }>("SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1", [name]);
          if (rows.length === 0) continue;
          // A loading copy is marked only once pg_restore finished; an unmarked one left by this
          // run's failed attempt carries the loading name no one else uses.
          const ours = rows[0]!.comment === ownerMark(owner) || (name !== database && rows[0]!.comment === null);
          if (!ours) {
            throw ApplicationFailure.nonRetryable(`refusing to drop Postgres database ${name}: it does not carry the marker of ${owner} (${rows[0]!.comment ? `its comment: ${JSON.stringify(rows[0]!.comment)}` : 'no ballast marker'})`, Failure.TargetRefused);
          }
          await disconnect(client, name);
          await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
          dropped ||= name === database;
        }
        return { dropped };
      });
    },
  };
}
