import type { ClickHouseClient } from '@clickhouse/client';
import { ApplicationFailure } from '@temporalio/activity';
import type { DestructiveAction } from '../../contracts/restoreTypes';
import { Failure } from '../../contracts/failures';
import type { RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import { databaseOwners, isDatabaseOwnedBy } from './ownership';
import { quoteString } from './sql';

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

/** Every target table that exists is dropped and recreated from the saved schema. */
export async function plannedClickHouseRestoreActions(
  { deps, owner }: RestoreActionContext,
  tasks: TaskOf<'clickhouse'>[],
): Promise<DestructiveAction[]> {
  const actions: DestructiveAction[] = [];
  if (tasks.length === 0) return actions;
  const ch = deps.connections.clickhouse(60_000);
  try {
    await refuseTakenDatabases(ch, owner, tasks);
    for (const t of tasks) {
      const result = await ch.query({
        query: `SELECT sum(rows) AS rows, count() AS parts FROM system.parts WHERE database = ${quoteString(t.target)} AND table = ${quoteString(t.table)} AND active`,
        format: 'JSONEachRow',
      });
      const [row] = await result.json<{ rows: string | number; parts: string | number }>();
      const exists = await ch.query({
        query: `SELECT count() AS n FROM system.tables WHERE database = ${quoteString(t.target)} AND name = ${quoteString(t.table)}`,
        format: 'JSONEachRow',
      });
      const [present] = await exists.json<{ n: string | number }>();
      if (Number(present?.n ?? 0) > 0) {
        actions.push({
          component: 'clickhouse',
          action: 'drop and recreate table',
          target: `${t.target}.${t.table}`,
          detail: `DROP TABLE ${t.target}.${t.table} (${Number(row?.rows ?? 0)} rows now), recreate it from the saved schema, load ${t.pieces.length - 1} partition(s)`,
        });
      }
    }
  } finally {
    await ch.close().catch(() => undefined);
  }
  return actions;
}
