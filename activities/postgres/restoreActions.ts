import pg from 'pg';
import { ApplicationFailure } from '@temporalio/activity';
import type { DestructiveAction } from '../../contracts/restoreTypes';
import { Failure } from '../../contracts/failures';
import type { RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import { asideName, ownerMark } from './restore';
import { findPgTool } from './tools';

/**
 * Every target database that exists is replaced: renamed aside and kept, its sessions ended. A
 * target beside its source (a drill's scratch name, a restore beside production) that exists
 * already must be this run's own work; and a pg_restore fit for the server must be there. Both
 * refuse here, before any step runs.
 */
export async function plannedPostgresRestoreActions(
  { deps, restoreId, owner }: RestoreActionContext,
  tasks: TaskOf<'postgres'>[],
): Promise<DestructiveAction[]> {
  const actions: DestructiveAction[] = [];
  const pgTargets = tasks.map((t) => t.target);
  if (pgTargets.length === 0) return actions;
  const client = new pg.Client(deps.connections.postgres());
  await client.connect();
  try {
    const { rows: version } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    // pg_restore must read the dumps (written by a pg_dump of some major) and speak to the server.
    const serverMajor = Math.floor(Number(version[0]!.v) / 10_000);
    const dumpMajor = Math.max(0, ...tasks.map((t) => Number.parseInt(String(t.piece.details?.pgDump ?? '0'), 10) || 0));
    await findPgTool(
      'pg_restore',
      Math.max(serverMajor, dumpMajor),
      deps.config.restore.pgRestorePath,
      dumpMajor > serverMajor ? `the major version of the pg_dump that wrote the backup, ${dumpMajor}` : `the server's major version ${serverMajor}`,
    );
    const { rows } = await client.query<{ datname: string; size: string; comment: string | null }>(
      "SELECT datname, pg_database_size(datname)::text AS size, shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = ANY($1)",
      [pgTargets],
    );
    const notOurs = rows.filter((row) => {
      const task = tasks.find((t) => t.target === row.datname)!;
      return task.target !== task.database && row.comment !== ownerMark(owner);
    });
    if (notOurs.length > 0) {
      throw ApplicationFailure.nonRetryable(
        `restore refused at plan, nothing was touched: ${notOurs.map((r) => `Postgres database ${r.datname} already exists and was not created by this run (${r.comment ? `its comment: ${JSON.stringify(r.comment)}` : 'no ballast marker'}); drop it or choose another target`).join('; ')}`,
        Failure.TargetRefused,
      );
    }
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
