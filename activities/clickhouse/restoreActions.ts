import type { ClickHouseClient } from '@clickhouse/client';
import type { S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { BackupPiece } from '../../contracts/backupTypes';
import type { DestructiveAction } from '../../contracts/restoreTypes';
import { Failure } from '../../contracts/failures';
import type { RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import { databaseOwners, isDatabaseOwnedBy } from './ownership';
import { readSmallObject } from './partitionLoad';
import { checkSavedSchema, SavedSchemaProblem } from './savedSchema';
import { checkSideNames, replicatedRefusal, sideNames } from './sideTables';
import { isMergeTreeFamily, quoteString } from './sql';
import { checkTablePieces } from './tablePieces';

/**
 * A target database beside its source (a drill's scratch name, a restore beside production) that
 * exists already must carry this run's marker: anyone else's is refused before anything is touched.
 */
async function refuseTakenDatabases(ch: ClickHouseClient, owner: string, tasks: TaskOf<'clickhouse'>[]): Promise<void> {
  const beside = [...new Set(tasks.filter((t) => t.target !== t.database).map((t) => t.target))];
  const taken: string[] = [];
  for (const database of beside) {
    const found = await (await ch.query({ query: `SELECT count() AS n FROM system.databases WHERE name = ${quoteString(database)}`, format: 'JSONEachRow' })).json<{ n: string | number }>();
    if (Number(found[0]?.n ?? 0) === 0 || (await isDatabaseOwnedBy(ch, database, owner))) continue;
    const owners = await databaseOwners(ch, database);
    taken.push(`ClickHouse database ${database} already exists and was not created by this run (${owners.length ? `its marker names ${owners.join(', ')}` : 'no ballast marker'})`);
  }
  if (taken.length) {
    throw ApplicationFailure.nonRetryable(`restore refused at plan, nothing was touched: ${taken.join('; ')}; drop it or choose another target`, Failure.TargetRefused);
  }
}

/**
 * Every table's saved schema is checked first (the restore runs it). Every target table that
 * exists is replaced: the backup is loaded beside it, then takes its name, and the table is
 * renamed aside and kept. A table that cannot be loaded beside itself (a Replicated one, a name
 * too long for its side tables) is refused here, before anyone is asked.
 */
export async function plannedClickHouseRestoreActions(
  { deps, s3, owner, restoreId }: RestoreActionContext,
  tasks: TaskOf<'clickhouse'>[],
): Promise<DestructiveAction[]> {
  const actions: DestructiveAction[] = [];
  if (tasks.length === 0) return actions;
  for (const t of tasks) await checkSchema(s3, deps.config.objectStore.backupBucket, t);
  for (const t of tasks) {
    const schema = t.pieces.find((p) => p.name === `${t.database}.${t.table}/schema`);
    const engine = typeof schema?.details?.engine === 'string' ? schema.details.engine : '';
    const refusal = replicatedRefusal(t.database, t.table, engine);
    if (refusal) throw ApplicationFailure.nonRetryable(`clickhouse: ${refusal}`, Failure.InvalidInput);
    try {
      checkSideNames(sideNames(t.table, restoreId));
    } catch (err) {
      throw ApplicationFailure.nonRetryable(`clickhouse ${t.database}.${t.table}: ${(err as Error).message}`, Failure.InvalidInput);
    }
  }
  const ch = deps.connections.clickhouse(60_000);
  try {
    await refuseTakenDatabases(ch, owner, tasks);
    for (const t of tasks) {
      const tables = await ch.query({
        query: `SELECT engine FROM system.tables WHERE database = ${quoteString(t.target)} AND name = ${quoteString(t.table)}`,
        format: 'JSONEachRow',
      });
      const [present] = await tables.json<{ engine: string }>();
      if (!present) continue;
      let now = `a ${present.engine} table`;
      if (isMergeTreeFamily(present.engine)) {
        const parts = await ch.query({
          query: `SELECT sum(rows) AS rows, uniqExact(partition_id) AS partitions FROM system.parts WHERE database = ${quoteString(t.target)} AND table = ${quoteString(t.table)} AND active`,
          format: 'JSONEachRow',
        });
        const [row] = await parts.json<{ rows: string | number; partitions: string | number }>();
        now = `${Number(row?.rows ?? 0)} rows in ${Number(row?.partitions ?? 0)} partition(s) now`;
      }
      const names = sideNames(t.table, restoreId);
      const partitions = t.pieces.filter((p) => !p.name.endsWith('/schema')).length;
      actions.push({
        component: 'clickhouse',
        action: 'replace table',
        target: `${t.target}.${t.table}`,
        detail: `kept aside as ${t.target}.${names.aside} (${now}), never dropped; the backup's ${partitions} partition(s) are loaded into ${t.target}.${names.loading} first, which then takes its name`,
      });
    }
  } finally {
    await ch.close().catch(() => undefined);
  }
  return actions;
}

/**
 * The table's saved CREATE statement, read back (against the sha256 the manifest records) and
 * parsed: a single CREATE TABLE of this very table with a MergeTree-family engine, and nothing else.
 */
async function checkSchema(s3: S3Client, bucket: string, t: TaskOf<'clickhouse'>): Promise<void> {
  const name = `${t.database}.${t.table}`;
  const refuse = (why: string, type: string = Failure.UnexpectedSchema) =>
    ApplicationFailure.nonRetryable(`backup table ${name} cannot be restored, nothing was touched: ${why}`, type);
  let schema: BackupPiece;
  try {
    schema = checkTablePieces(t.database, t.table, t.pieces).schema;
  } catch (err) {
    throw refuse((err as Error).message, Failure.InvalidBackup);
  }
  const statement = (await readSmallObject(s3, bucket, schema, Context.current().cancellationSignal)).toString('utf8');
  let engine: string;
  try {
    engine = checkSavedSchema(statement, t.database, t.table).engine;
  } catch (err) {
    if (!(err instanceof SavedSchemaProblem)) throw err;
    throw refuse(`its saved schema (${schema.key}) is refused: ${err.message}`);
  }
  const recorded = schema.details?.engine;
  if (typeof recorded === 'string' && recorded !== engine) {
    throw refuse(`its saved schema (${schema.key}) creates a ${engine} table, but the manifest records engine ${recorded}`);
  }
}
