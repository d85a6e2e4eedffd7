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
import {
  checkSideNames,
  exchangeStatement,
  nextSideStep,
  renameStatement,
  replicatedRefusal,
  sideNames,
  sideState,
  swapName,
  uuidPrefix,
  type SeenTable,
  type SideNames,
} from './sideTables';
import type { ActivityDeps } from '../deps';
import { keepHeartbeating, throttledHeartbeat } from '../common/heartbeat';
import { databaseOwners, isDatabaseOwnedBy, markDatabaseOwner, OWNER_TABLE } from './ownership';
import { Failure } from '../../contracts/failures';

export interface ClickHouseRestoreRequest {
  /** Identifies this restore run: the table kept aside carries it, so a retry knows its own swap. */
  restoreId: string;
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
  /** 'swap' from just before the loaded table starts taking the target's name. */
  phase?: 'load' | 'swap';
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
 * is sent only to a server that has it.
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

/** The database's engine, or undefined when it does not exist (system.databases has it on 18.16 too). */
async function databaseEngine(client: ClickHouseClient, database: string): Promise<string | undefined> {
  const [row] = await rows<{ engine: string }>(client, `SELECT engine FROM system.databases WHERE name = ${quoteString(database)}`);
  return row?.engine;
}

type FoundTable = SeenTable & { engine: string };

/**
 * The restore's tables in the target database. UUIDs only from an Atomic database: 18.16's
 * system.tables has no uuid column, and only Atomic databases exchange tables.
 */
async function restoreTables(client: ClickHouseClient, database: string, names: SideNames, atomic: boolean): Promise<FoundTable[]> {
  const named = [names.table, names.loading, names.aside].map(quoteString).join(', ');
  const swaps = atomic ? ` OR startsWith(name, ${quoteString(names.swapPrefix)})` : '';
  return rows<FoundTable>(
    client,
    `SELECT name, engine, ${atomic ? 'toString(uuid)' : "''"} AS uuid FROM system.tables
     WHERE database = ${quoteString(database)} AND (name IN (${named})${swaps})`,
  );
}

/**
 * EXCHANGE refused for want of support, before changing anything: NOT_IMPLEMENTED (48) when the
 * database is not Atomic or the OS cannot exchange files, UNSUPPORTED_METHOD (1) when renameat2
 * itself is missing.
 */
function exchangeUnsupported(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? '');
  return code === '48' || code === '1' || /RENAME EXCHANGE is not supported|renameat2\(\) is not supported/i.test((err as Error).message ?? '');
}

function readProgress(details: unknown): ClickHouseRestoreProgress | undefined {
  const d = details as Partial<ClickHouseRestoreProgress> | undefined;
  if (!d || typeof d !== 'object' || typeof d.partitionsDone !== 'number' || typeof d.bytes !== 'number') return undefined;
  if (!Array.isArray(d.done) || !d.done.every((id) => typeof id === 'string')) return undefined;
  if (d.phase !== undefined && d.phase !== 'load' && d.phase !== 'swap') return undefined;
  return d as ClickHouseRestoreProgress;
}

export function createClickHouseRestoreActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    /**
     * Restores one ClickHouse table from its backup pieces into `targetDatabase`, beside the table
     * it replaces: creates `<table>__ballast_loading` from the saved schema (renamed into the
     * target), loads each partition object into it, streamed from the backup bucket straight into
     * `INSERT INTO ... FORMAT Native` with `decompress=1`, and only then swaps it in: EXCHANGE
     * TABLES where the database is Atomic, else one RENAME of both tables. The replaced table is
     * kept as `<table>_before_<run>`, never dropped; until the swap it is not touched at all.
     * A retried attempt continues after the partitions its heartbeat details list as done when
     * the loading table holds exactly those (anything else loads it again from scratch), and one
     * that comes after the swap finds the work done from the tables' names.
     */
    async restoreClickHouseTable(req: ClickHouseRestoreRequest): Promise<RestoreStepResult> {
      const started = Date.now();
      let checked: TablePieces;
      let names: SideNames;
      try {
        if (!req || typeof req !== 'object') throw new Error('request must be an object');
        if (typeof req.restoreId !== 'string' || req.restoreId.length === 0) throw new Error('restoreId must be a non-empty string');
        backupPrefix(req.backupId);
        validateName(req.database, 'database');
        validateName(req.table, 'table');
        names = sideNames(req.table, req.restoreId);
        checkSideNames(names);
        checkTargetDatabase(req.targetDatabase);
        checked = checkTablePieces(req.database, req.table, req.pieces);
      } catch (err) {
        throw invalid('restoreClickHouseTable', (err as Error).message);
      }
      const { database, table, targetDatabase } = req;
      const { schema, partitions, dataExported, engine } = checked;
      const replicated = replicatedRefusal(database, table, engine);
      if (replicated) throw invalid('restoreClickHouseTable', replicated);

      const ctx = Context.current();
      const unit = `clickhouse ${targetDatabase}.${table}`;
      const loading = qualifiedName(targetDatabase, names.loading);
      const notes: string[] = [];
      const ch = connections.clickhouse();
      const s3 = connections.s3(300_000);
      const totalRows = partitions.reduce((n, p) => n + p.rows, 0);
      const progress: ClickHouseRestoreProgress = { phase: 'load', partitionsDone: 0, partitionsTotal: partitions.length, bytes: 0, done: [] };
      let inFlight = 0;
      const current = () => ({ ...progress, done: [...progress.done], bytes: progress.bytes + inFlight });
      const beat = throttledHeartbeat(current);
      const stopBeating = keepHeartbeating(current);
      let mergesStopped = false;
      const allLoaded = () => {
        progress.partitionsDone = partitions.length;
        progress.bytes = partitions.reduce((n, p) => n + p.piece.size, 0);
        progress.done = partitions.map((p) => p.partitionId);
      };
      const result = (resumed: boolean): RestoreStepResult => ({
        component: 'clickhouse',
        unit,
        bytes: progress.bytes,
        rows: totalRows,
        durationMs: Date.now() - started,
        notes,
        ...(resumed ? { resumed: true } : {}),
      });
      /** What the kept table held, for the notes: read before the swap, or of the aside after it. */
      const holding = async (name: string, tableEngineName: string) => {
        if (!isMergeTreeFamily(tableEngineName)) return `a ${tableEngineName} table`;
        const held = [...(await activeRows(ch, targetDatabase, name)).values()].reduce((a, b) => a + b, 0);
        return `${held} rows`;
      };
      const keptNote = (what: string) =>
        `the table it replaced (${what}) is kept as ${targetDatabase}.${names.aside}: drop it once the restore is accepted`;
      try {
        // Everything that can be checked without changing anything, first: the schema object and
        // its name.
        const statement = (await readSmallObject(s3, bucket, schema, ctx.cancellationSignal)).toString('utf8');
        let renamed: RenamedStatement;
        try {
          renamed = renameCreateStatement(statement, database, table, targetDatabase, names.loading);
        } catch (err) {
          throw ApplicationFailure.nonRetryable(`restoreClickHouseTable: ${(err as Error).message}`, Failure.UnexpectedSchema);
        }
        if (dataExported && !/TABLE/.test(renamed.kind)) {
          throw ApplicationFailure.nonRetryable(
            `restoreClickHouseTable: ${database}.${table} has data pieces but its schema creates a ${renamed.kind}`,
            Failure.UnexpectedSchema,
          );
        }
        const dictionary = renamed.kind === 'DICTIONARY';
        const run = (query: string) => ch.command({ query });

        // Where things stand: the tables' names say how far an earlier attempt got.
        const earlier = ctx.info.attempt > 1 ? readProgress(ctx.info.heartbeatDetails) : undefined;
        const atomic = (await databaseEngine(ch, targetDatabase)) === 'Atomic';
        const found = await restoreTables(ch, targetDatabase, names, atomic);
        const state = sideState(names, found);
        const engineOf = (name: string) => found.find((t) => t.name === name)?.engine ?? '';
        const next = nextSideStep(names, state, earlier?.phase === 'swap');
        if (next.step === 'refuse') {
          throw ApplicationFailure.nonRetryable(
            `restoreClickHouseTable: in database ${targetDatabase}, ${next.reason}; nothing was changed, these tables need a person`,
            Failure.TargetConflict,
          );
        }
        if (next.step === 'keepAside') {
          const kept = await holding(next.from, engineOf(next.from));
          await run(renameStatement(targetDatabase, [[next.from, names.aside]], dictionary));
          allLoaded();
          notes.push(`${targetDatabase}.${table} was already swapped in by an earlier attempt of this run`, keptNote(kept));
          return result(true);
        }
        if (next.step === 'done') {
          allLoaded();
          notes.push(`${targetDatabase}.${table} was already restored by this run`);
          if (state.aside) notes.push(keptNote(await holding(names.aside, engineOf(names.aside))));
          return result(true);
        }

        let from = names.loading;
        let resumed = false;
        if (next.step === 'swap') {
          from = next.from;
          resumed = true;
          allLoaded();
          notes.push(`resumed: an earlier attempt loaded every partition into ${targetDatabase}.${from}`);
        } else {
          // A retried attempt: continue only when the loading table holds exactly what the details say.
          let resumeFrom: Set<string> | undefined;
          const existing = state.loading ? await activeRows(ch, targetDatabase, names.loading) : new Map<string, number>();
          const existingRows = [...existing.values()].reduce((a, b) => a + b, 0);
          if (earlier && state.loading) {
            const expected = new Map(partitions.map((p) => [p.partitionId, p.rows]));
            const done = new Set(earlier.done);
            const matches =
              dataExported &&
              (engine === '' || engineOf(names.loading) === engine) &&
              earlier.done.every((id) => expected.has(id) && (existing.get(id) ?? 0) === expected.get(id)) &&
              [...existing].every(([id, n]) => n === 0 || done.has(id));
            if (matches) {
              resumeFrom = done;
              notes.push(`resumed: ${done.size} of ${partitions.length} partition(s) were loaded by an earlier attempt`);
            } else {
              notes.push(
                `started over: ${names.loading} held ${existingRows} row(s) in ${existing.size} partition(s), not the ${earlier.done.length} partition(s) an earlier attempt reported loaded`,
              );
            }
          } else if (ctx.info.attempt > 1 && state.loading) {
            notes.push(`started over: an earlier attempt left no progress to resume from (${names.loading} held ${existingRows} row(s))`);
          } else if (state.loading) {
            notes.push(`dropped ${names.loading}, left by an earlier run (${existingRows} row(s))`);
          }

          if (!resumeFrom) {
            const createSettings = await savedSchemaSettings(ch);
            await run(`CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(targetDatabase)}`);
            // A database beside its source is this run's own: teardown drops only what it marked.
            if (targetDatabase !== req.database) await markDatabaseOwner(ch, targetDatabase, req.restoreId);
            // Only ever restored rows: an earlier attempt's, or an abandoned run's.
            await run(`DROP ${dictionary ? 'DICTIONARY' : 'TABLE'} IF EXISTS ${loading}`);
            await ch.command({ query: renamed.statement, clickhouse_settings: createSettings });
          }
          resumed = resumeFrom !== undefined;

          if (dataExported) {
            // Merges paused while loading: engines that collapse rows (Replacing, Summing...) would
            // otherwise change the per-partition counts a retried attempt compares.
            mergesStopped = await ch
              .command({ query: `SYSTEM STOP MERGES ${loading}` })
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
            const job: TableLoad = { client: ch, s3, bucket, targetDatabase, table: names.loading, cancellationSignal: ctx.cancellationSignal };
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
            if (mergesStopped) {
              await run(`SYSTEM START MERGES ${loading}`);
              mergesStopped = false;
            }
          }
        }

        // The swap: the first change to anything but the side tables.
        ctx.cancellationSignal.throwIfAborted();
        const replaced = state.target ? await holding(names.table, state.target.engine) : undefined;
        progress.phase = 'swap';
        beat.now();
        let how: string;
        if (!state.target) {
          await run(renameStatement(targetDatabase, [[from, table]], dictionary));
          how = 'RENAME TABLE';
        } else if (atomic && uuidPrefix(state.target.uuid)) {
          const partner = swapName(names, state.target.uuid);
          if (from !== partner) await run(renameStatement(targetDatabase, [[from, partner]], dictionary));
          // Undefined once exchanged; the server's refusal where it cannot exchange (nothing changed then).
          const refused = await run(exchangeStatement(targetDatabase, table, partner, dictionary)).then(
            () => undefined,
            (err: unknown) => {
              if (exchangeUnsupported(err)) return err as Error;
              throw err;
            },
          );
          if (refused === undefined) {
            // The partner now holds the replaced table, under a name that says so (its own UUID).
            await run(renameStatement(targetDatabase, [[partner, names.aside]], dictionary));
            how = 'EXCHANGE TABLES';
          } else {
            await run(renameStatement(targetDatabase, [[table, names.aside], [partner, table]], dictionary));
            how = `RENAME TABLE (EXCHANGE refused: ${refused.message.split('\n')[0]})`;
          }
        } else {
          await run(renameStatement(targetDatabase, [[table, names.aside], [from, table]], dictionary));
          how = 'RENAME TABLE';
        }
        if (replaced) notes.push(`swapped in by ${how}`, keptNote(replaced));
        else if (state.aside) notes.push(`finished the RENAME an earlier attempt began`, keptNote(await holding(names.aside, state.aside.engine)));
        else notes.push(`renamed in from ${from}: there was no table to replace`);

        if (targetDatabase !== database) {
          notes.push(`restored from ${database}.${table} into database ${targetDatabase}`);
          if (mentionsDatabase(renamed.statement.slice(`CREATE ${renamed.kind} ${loading}`.length), database)) {
            notes.push(`its definition still refers to database ${database} (only its own name was rewritten)`);
          }
        }
        if (!dataExported) notes.push(`engine ${engine || renamed.kind}: schema only`);
        else if (partitions.length === 0) notes.push('the backup holds no rows for this table');
        return result(resumed);
      } catch (err) {
        if (ctx.cancellationSignal.aborted && ctx.cancellationSignal.reason instanceof Error) throw ctx.cancellationSignal.reason;
        throw err;
      } finally {
        stopBeating();
        if (mergesStopped) await ch.command({ query: `SYSTEM START MERGES ${loading}` }).catch(() => undefined);
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
