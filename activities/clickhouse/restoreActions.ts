import type { DestructiveAction } from '../../contracts/restoreTypes';
import type { RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import { quoteString } from './sql';

/** Every target table that exists is dropped and recreated from the saved schema. */
export async function plannedClickHouseRestoreActions(
  { deps }: RestoreActionContext,
  tasks: TaskOf<'clickhouse'>[],
): Promise<DestructiveAction[]> {
  const actions: DestructiveAction[] = [];
  if (tasks.length === 0) return actions;
  const ch = deps.connections.clickhouse(60_000);
  try {
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
