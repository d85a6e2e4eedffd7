import { ApplicationFailure } from '@temporalio/common';
import { Failure } from '../../contracts/failures';
import type { DestructiveAction } from '../../contracts/restoreTypes';
import type { RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import { checkSideNames, replicatedRefusal, sideNames } from './sideTables';
import { isMergeTreeFamily, quoteString } from './sql';

/**
 * Every target table that exists is replaced: the backup is loaded beside it, then takes its
 * name, and the table is renamed aside and kept. A table that cannot be loaded beside itself (a
 * Replicated one, a name too long for its side tables) is refused here, before anyone is asked.
 */
export async function plannedClickHouseRestoreActions(
  { deps, restoreId }: RestoreActionContext,
  tasks: TaskOf<'clickhouse'>[],
): Promise<DestructiveAction[]> {
  const actions: DestructiveAction[] = [];
  if (tasks.length === 0) return actions;
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
