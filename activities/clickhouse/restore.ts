import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { BackupPiece } from '../../contracts/backupTypes';
import type { RestoreStepResult, VerifyCheck, VerifyResult } from '../../contracts/restoreTypes';
import { backupPrefix } from '../storage/backupObjects';
import { isMergeTreeFamily, qualifiedName, quoteIdentifier, quoteString, validateName } from './sql';
import { mentionsDatabase, renameCreateStatement, type RenamedStatement } from './createStatement';
import { loadPartition, readSmallObject, type TableLoad } from './partitionLoad';
import { checkTablePieces, checkTargetDatabase, RESERVED_DATABASES, type TablePieces } from './tablePieces';
import type { ActivityDeps } from '../deps';
import { keepHeartbeating, throttledHeartbeat } from '../common/heartbeat';
import { databaseOwners, isDatabaseOwnedBy, OWNER_TABLE } from './ownership';
import { Failure } from '../../contracts/failures';

export interface ClickHouseRestoreRequest {
  backupId: string;
  /** The database the table was backed up from (the pieces are named after it). */
  database: string;
  table: string;
  /** Where the table is restored: the same database, or a scratch one (drills). */
  targetDatabase: string;
  /** The table's pieces from the manifest: its schema piece and one piece per partition. */
  pieces: BackupPiece[];
}

export interface ClickHouseVerifyRequest {
  database: string;
  table: string;
  targetDatabase: string;
  pieces: BackupPiece[];
}

export interface ClickHouseDropDatabaseRequest {
  database: string;
  /** The restore run whose marker the database must carry (ownership.ts). */
  owner: string;
}

/** Heartbeat details: progress for the UI, and where a retried attempt picks up. */
export interface ClickHouseRestoreProgress {
  partitionsDone: number;
  partitionsTotal?: number;
  /** Object bytes read: complete partitions plus the one loading. */
  bytes: number;
  /** Partition ids whose objects were loaded completely, in load order. */
  done: string[];
}

function invalid(activity: string, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${activity}: ${message}`, Failure.InvalidInput);
}

/**
 * Settings for re-creating a saved table. A schema saved from an older server may use MergeTree's
 * deprecated MergeTree(date, key, granularity) syntax, which ClickHouse refuses since 22.x unless
 * allow_deprecated_syntax_for_merge_tree is on; 18.16 knows no such setting and refuses it, so it
 * is sent only to a server that has it. Asked before anything is dropped.
 */
async function savedSchemaSettings(client: ClickHouseClient): Promise<ClickHouseSettings> {
  const [row] = await rows<{ n: string | number }>(client, "SELECT count() AS n FROM system.settings WHERE name = 'allow_deprecated_syntax_for_merge_tree'");
  return Number(row?.n) > 0 ? { allow_deprecated_syntax_for_merge_tree: 1 } : {};
}

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  const result = await client.query({ query, format: 'JSONEachRow' });
  return result.json<T>();
}

/** Active rows per partition id of a table (system.parts); empty when the table does not exist. */
async function activeRows(client: ClickHouseClient, database: string, table: string): Promise<Map<string, number>> {
  const found = await rows<{ partition_id: string; rows: string | number }>(
    client,
    `SELECT partition_id, sum(rows) AS rows FROM system.parts
     WHERE database = ${quoteString(database)} AND table = ${quoteString(table)} AND active
     GROUP BY partition_id`,
  );
  return new Map(found.map((p) => [p.partition_id, Number(p.rows)]));
}

/** The table's engine, or undefined when it does not exist. */
async function tableEngine(client: ClickHouseClient, database: string, table: string): Promise<string | undefined> {
  const [row] = await rows<{ engine: string }>(
    client,
    `SELECT engine FROM system.tables WHERE database = ${quoteString(database)} AND name = ${quoteString(table)}`,
  );
  return row?.engine;
}

function readProgress(details: unknown): ClickHouseRestoreProgress | undefined {
  const d = details as Partial<ClickHouseRestoreProgress> | undefined;
  if (!d || typeof d !== 'object' || typeof d.partitionsDone !== 'number' || typeof d.bytes !== 'number') return undefined;
  if (!Array.isArray(d.done) || !d.done.every((id) => typeof id === 'string')) return undefined;
  return d as ClickHouseRestoreProgress;
}

export function createClickHouseRestoreActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    /**
     * Restores one ClickHouse table from its backup pieces into `targetDatabase`: recreates the
     * database if needed, drops the table there, creates it from the saved schema (renamed into the
     * target) and loads each partition object, streamed from the backup bucket straight into
     * `INSERT INTO ... FORMAT Native` with `decompress=1`. A retried attempt continues after the
     * partitions its heartbeat details list as done when the table holds exactly those; anything
     * else starts over, so no partition is ever loaded twice.
     */
    async restoreClickHouseTable(req: ClickHouseRestoreRequest): Promise<RestoreStepResult> {
      const started = Date.now();
      let checked: TablePieces;
      try {
        if (!req || typeof req !== 'object') throw new Error('request must be an object');
        backupPrefix(req.backupId);
        validateName(req.database, 'database');
        validateName(req.table, 'table');
        checkTargetDatabase(req.targetDatabase);
        checked = checkTablePieces(req.database, req.table, req.pieces);
      } catch (err) {
        throw invalid('restoreClickHouseTable', (err as Error).message);
      }
      const { database, table, targetDatabase } = req;
      const { schema, partitions, dataExported, engine } = checked;
      if (/^Replicated/.test(engine) && targetDatabase !== database) {
        // Its saved ZooKeeper path is the production table's: a copy beside it would join
        // production's replicas and write the restored rows into production.
        throw invalid(
          'restoreClickHouseTable',
          `${database}.${table} is ${engine}: restoring it into another database (targetDatabase ${targetDatabase}) would make it a replica of the original table`,
        );
      }

      const ctx = Context.current();
      const unit = `clickhouse ${targetDatabase}.${table}`;
      const target = qualifiedName(targetDatabase, table);
      const notes: string[] = [];
      const ch = connections.clickhouse();
      const s3 = connections.s3(300_000);
      const totalRows = partitions.reduce((n, p) => n + p.rows, 0);
      const progress: ClickHouseRestoreProgress = { partitionsDone: 0, partitionsTotal: partitions.length, bytes: 0, done: [] };
      let inFlight = 0;
      const current = () => ({ ...progress, done: [...progress.done], bytes: progress.bytes + inFlight });
      const beat = throttledHeartbeat(current);
      const stopBeating = keepHeartbeating(current);
      let mergesStopped = false;
      try {
        // Everything that can be checked without changing anything, first: the schema object and
        // its name.
        const statement = (await readSmallObject(s3, bucket, schema, ctx.cancellationSignal)).toString('utf8');
        let renamed: RenamedStatement;
        try {
          renamed = renameCreateStatement(statement, database, table, targetDatabase);
        } catch (err) {
          throw ApplicationFailure.nonRetryable(`restoreClickHouseTable: ${(err as Error).message}`, Failure.UnexpectedSchema);
        }
        if (dataExported && !/TABLE/.test(renamed.kind)) {
          throw ApplicationFailure.nonRetryable(
            `restoreClickHouseTable: ${database}.${table} has data pieces but its schema creates a ${renamed.kind}`,
            Failure.UnexpectedSchema,
          );
        }

        // A retried attempt: continue only when the table holds exactly what the details say.
        const earlier = ctx.info.attempt > 1 ? readProgress(ctx.info.heartbeatDetails) : undefined;
        let resumeFrom: Set<string> | undefined;
        const existingEngine = await tableEngine(ch, targetDatabase, table);
        const existing = existingEngine === undefined ? new Map<string, number>() : await activeRows(ch, targetDatabase, table);
        const existingRows = [...existing.values()].reduce((a, b) => a + b, 0);
        if (earlier && existingEngine !== undefined) {
          const expected = new Map(partitions.map((p) => [p.partitionId, p.rows]));
          const done = new Set(earlier.done);
          const matches =
            dataExported &&
            (engine === '' || existingEngine === engine) &&
            earlier.done.every((id) => expected.has(id) && (existing.get(id) ?? 0) === expected.get(id)) &&
            [...existing].every(([id, n]) => n === 0 || done.has(id));
          if (matches) {
            resumeFrom = done;
            notes.push(`resumed: ${done.size} of ${partitions.length} partition(s) were loaded by an earlier attempt`);
          } else {
            notes.push(
              `started over: the table held ${existingRows} row(s) in ${existing.size} partition(s), not the ${earlier.done.length} partition(s) an earlier attempt reported loaded`,
            );
          }
        } else if (ctx.info.attempt > 1 && existingEngine !== undefined) {
          notes.push(`started over: an earlier attempt left no progress to resume from (the table held ${existingRows} row(s))`);
        } else if (existingEngine !== undefined) {
          notes.push(
            isMergeTreeFamily(existingEngine)
              ? `replaced an existing table with ${existingRows} rows`
              : `replaced an existing ${existingEngine} table`,
          );
        }

        if (!resumeFrom) {
          const createSettings = await savedSchemaSettings(ch);
          await ch.command({ query: `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(targetDatabase)}` });
          await ch.command({ query: `DROP TABLE IF EXISTS ${target}` });
          await ch.command({ query: renamed.statement, clickhouse_settings: createSettings });
        }
        if (targetDatabase !== database) {
          notes.push(`restored from ${database}.${table} into database ${targetDatabase}`);
          if (mentionsDatabase(renamed.statement.slice(`CREATE ${renamed.kind} ${target}`.length), database)) {
            notes.push(`its definition still refers to database ${database} (only its own name was rewritten)`);
          }
        }
        if (!dataExported) {
          notes.push(`engine ${engine || renamed.kind}: schema only`);
          return { component: 'clickhouse', unit, bytes: 0, rows: 0, durationMs: Date.now() - started, notes, ...(resumeFrom ? { resumed: true } : {}) };
        }

        // Merges paused while loading: engines that collapse rows (Replacing, Summing...) would
        // otherwise change the per-partition counts a retried attempt compares.
        mergesStopped = await ch
          .command({ query: `SYSTEM STOP MERGES ${target}` })
          .then(() => true)
          .catch(() => false);

        for (const p of partitions) {
          if (resumeFrom?.has(p.partitionId)) {
            progress.partitionsDone++;
            progress.bytes += p.piece.size;
            progress.done.push(p.partitionId);
          }
        }
        beat.now();
        const job: TableLoad = { client: ch, s3, bucket, targetDatabase, table, cancellationSignal: ctx.cancellationSignal };
        for (const p of partitions) {
          if (resumeFrom?.has(p.partitionId)) continue;
          ctx.cancellationSignal.throwIfAborted();
          await loadPartition(job, p, (bytes) => {
            inFlight = bytes;
            beat();
          });
          inFlight = 0;
          progress.partitionsDone++;
          progress.bytes += p.piece.size;
          progress.done.push(p.partitionId);
          beat.now();
        }
        if (partitions.length === 0) notes.push('the backup holds no rows for this table');
        return {
          component: 'clickhouse',
          unit,
          bytes: progress.bytes,
          rows: totalRows,
          durationMs: Date.now() - started,
          notes,
          ...(resumeFrom ? { resumed: true } : {}),
        };
      } catch (err) {
        if (ctx.cancellationSignal.aborted && ctx.cancellationSignal.reason instanceof Error) throw ctx.cancellationSignal.reason;
        throw err;
      } finally {
        stopBeating();
        if (mergesStopped) await ch.command({ query: `SYSTEM START MERGES ${target}` }).catch(() => undefined);
        await ch.close().catch(() => undefined);
        s3.destroy();
      }
    },

    /**
     * Compares a restored table with its backup: per partition piece, its rows against the target's
     * active rows for that partition id (system.parts), and the table's count() against the sum.
     * Reports mismatches; does not throw for them.
     */
    async verifyClickHouseTable(req: ClickHouseVerifyRequest): Promise<VerifyResult> {
      let checked: TablePieces;
      try {
        if (!req || typeof req !== 'object') throw new Error('request must be an object');
        validateName(req.database, 'database');
        validateName(req.table, 'table');
        checkTargetDatabase(req.targetDatabase);
        checked = checkTablePieces(req.database, req.table, req.pieces);
      } catch (err) {
        throw invalid('verifyClickHouseTable', (err as Error).message);
      }
      const { table, targetDatabase } = req;
      const unit = `clickhouse ${targetDatabase}.${table}`;
      const checks: VerifyCheck[] = [];
      const check = (name: string, expected: string | number, actual: string | number) =>
        checks.push({ name: `${unit} ${name}`, expected, actual, ok: expected === actual });
      const ch = connections.clickhouse();
      try {
        const engine = await tableEngine(ch, targetDatabase, table);
        const expectedEngine = checked.engine || engine || 'a table';
        check('exists', expectedEngine, engine ?? 'missing');
        if (engine === undefined || !checked.dataExported) {
          return { component: 'clickhouse', unit, ok: checks.every((c) => c.ok), checks };
        }
        const active = await activeRows(ch, targetDatabase, table);
        for (const p of checked.partitions) check(`partition ${p.partitionId} rows`, p.rows, active.get(p.partitionId) ?? 0);
        const expectedIds = new Set(checked.partitions.map((p) => p.partitionId));
        const extra = [...active].filter(([id, n]) => n > 0 && !expectedIds.has(id)).map(([id]) => id).sort();
        check('partitions not in the backup', '', extra.join(', '));
        const [counted] = await rows<{ n: string | number }>(ch, `SELECT count() AS n FROM ${qualifiedName(targetDatabase, table)}`);
        check('rows', checked.partitions.reduce((n, p) => n + p.rows, 0), Number(counted?.n ?? 0));
        return { component: 'clickhouse', unit, ok: checks.every((c) => c.ok), checks };
      } finally {
        await ch.close().catch(() => undefined);
      }
    },

    /**
     * Drops a scratch database (DR-drill teardown), only when its marker names `owner` alone.
     * Refuses the configured production databases and the server's own.
     */
    async dropClickHouseDatabase(req: ClickHouseDropDatabaseRequest): Promise<{ dropped: boolean }> {
      const database = req?.database;
      try {
        validateName(database, 'database');
      } catch (err) {
        throw invalid('dropClickHouseDatabase', (err as Error).message);
      }
      if (RESERVED_DATABASES.includes(database)) {
        throw invalid('dropClickHouseDatabase', `database ${JSON.stringify(database)} is a system database and is never dropped`);
      }
      if (config.clickhouse.databases.some((d) => d.name === database)) {
        throw invalid('dropClickHouseDatabase', `database ${JSON.stringify(database)} is a configured production database and is never dropped`);
      }
      const ch = connections.clickhouse();
      try {
        const [found] = await rows<{ name: string }>(ch, `SELECT name FROM system.databases WHERE name = ${quoteString(database)}`);
        if (!found) return { dropped: false };
        if (!(await isDatabaseOwnedBy(ch, database, req.owner))) {
          const owners = await databaseOwners(ch, database);
          throw ApplicationFailure.nonRetryable(`refusing to drop ClickHouse database ${database}: its ${OWNER_TABLE} marker does not name ${req.owner} alone (${owners.length ? `it names: ${owners.join(', ')}` : 'no marker'})`, Failure.TargetRefused);
        }
        await ch.command({ query: `DROP DATABASE IF EXISTS ${quoteIdentifier(database)}` });
        return { dropped: true };
      } finally {
        await ch.close().catch(() => undefined);
      }
    },
  };
}
