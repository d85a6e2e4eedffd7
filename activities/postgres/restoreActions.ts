import pg from 'pg';
import type { DestructiveAction } from '../../contracts/restoreTypes';
import type { RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import { asideName } from './restore';

/** Every target database that exists is replaced: renamed aside and kept, its sessions ended. */
export async function plannedPostgresRestoreActions(
  { deps, restoreId }: RestoreActionContext,
  tasks: TaskOf<'postgres'>[],
): Promise<DestructiveAction[]> {
  const actions: DestructiveAction[] = [];
  const pgTargets = tasks.map((t) => t.target);
  if (pgTargets.length === 0) return actions;
  const client = new pg.Client(deps.connections.postgres());
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string; size: string }>(
      'SELECT datname, pg_database_size(datname)::text AS size FROM pg_database WHERE datname = ANY($1)',
      [pgTargets],
    );
    for (const row of rows) {
      actions.push({
        component: 'postgres',
        action: 'replace database',
        target: row.datname,
        detail: `the existing ${row.datname} (${(Number(row.size) / 1024 ** 2).toFixed(1)} MiB) is renamed to ${asideName(row.datname, restoreId)} and kept; its sessions are ended; the restored copy takes the name`,
      });
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  return actions;
}
