import type { CheckOptions, SystemHealth } from '../../contracts/healthTypes';
import { runCheck } from '../common/healthReport';
import { checkTimeoutMs, type ActivityDeps } from '../deps';

export function createClickHouseActivities(deps: ActivityDeps) {
  const { config, connections } = deps;

  return {
    /** Pings the HTTP interface, reads the server version, and checks the configured databases exist. */
    async checkClickHouse(timeoutSeconds?: number, options: CheckOptions = {}): Promise<SystemHealth> {
      const timeoutMs = checkTimeoutMs(deps, timeoutSeconds);
      return runCheck('clickhouse', timeoutMs, async (figures) => {
        const client = connections.clickhouse(timeoutMs);
        try {
          const ping = await client.ping();
          if (!ping.success) throw ping.error;
          const version = await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
          const [row] = await version.json<{ version: string }>();
          figures.version = row?.version ?? 'unknown';
          const databases = await client.query({ query: 'SELECT name FROM system.databases', format: 'JSONEachRow' });
          const present = new Set((await databases.json<{ name: string }>()).map((r) => r.name));
          const wanted = config.clickhouse.databases.map((d) => d.name);
          const missing = wanted.filter((name) => !present.has(name));
          figures.databases = wanted.length;
          figures.missingDatabases = missing;
          return missing.length && !options.allowMissingDatabases ? [`configured database(s) missing: ${missing.join(', ')}`] : [];
        } finally {
          await client.close().catch(() => undefined);
        }
      });
    },
  };
}
