import pg from 'pg';
import type { CheckOptions, SystemHealth } from '../../contracts/healthTypes';
import { runCheck } from '../common/healthReport';
import { checkTimeoutMs, type ActivityDeps } from '../deps';

export function createPostgresActivities(deps: ActivityDeps) {
  const { config, connections } = deps;

  return {
    /** Connects, reads the server version, and checks every configured database exists. */
    async checkPostgres(timeoutSeconds?: number, options: CheckOptions = {}): Promise<SystemHealth> {
      const timeoutMs = checkTimeoutMs(deps, timeoutSeconds);
      return runCheck('postgres', timeoutMs, async (figures) => {
        const client = new pg.Client({ ...connections.postgres(undefined, timeoutMs), query_timeout: timeoutMs });
        try {
          await client.connect();
          const version = await client.query<{ server_version: string }>('SHOW server_version');
          figures.version = version.rows[0]?.server_version ?? 'unknown';
          const found = await client.query<{ datname: string }>(
            'SELECT datname FROM pg_database WHERE datname = ANY($1::text[])',
            [config.postgres.databases],
          );
          const present = new Set(found.rows.map((r) => r.datname));
          const missing = config.postgres.databases.filter((db) => !present.has(db));
          figures.databases = config.postgres.databases.length;
          figures.missingDatabases = missing;
          return missing.length && !options.allowMissingDatabases ? [`configured database(s) missing: ${missing.join(', ')}`] : [];
        } finally {
          await client.end().catch(() => undefined);
        }
      });
    },
  };
}
