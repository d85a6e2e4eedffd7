/**
 * Postgres maintenance for compaction: which tables need a vacuum (pg_stat_user_tables), and
 * VACUUM (ANALYZE) with a short lock_timeout, retried, so it never queues readers behind it.
 * VACUUM FULL only for tables the policy names.
 */
import pg from 'pg';
import type { PostgresTablePlan, StepAttempt, VacuumStep } from '../../contracts/maintenanceTypes';
import { heartbeat } from '../common/heartbeat';
import type { ActivityDeps } from '../deps';

interface TableStats {
  schema: string;
  table: string;
  live: number;
  dead: number;
  lastVacuum: string | null;
  lastAutovacuum: string | null;
}

const STATS = `SELECT schemaname AS schema, relname AS table, n_live_tup AS live, n_dead_tup AS dead,
  last_vacuum AS "lastVacuum", last_autovacuum AS "lastAutovacuum" FROM pg_stat_user_tables`;

async function stats(client: pg.Client, schema?: string, table?: string): Promise<TableStats[]> {
  const filter = schema === undefined ? ' ORDER BY schemaname, relname' : ' WHERE schemaname = $1 AND relname = $2';
  const result = await client.query<{ schema: string; table: string; live: string; dead: string; lastVacuum: Date | null; lastAutovacuum: Date | null }>(STATS + filter, schema === undefined ? [] : [schema, table]);
  return result.rows.map((r) => ({
    schema: r.schema,
    table: r.table,
    live: Number(r.live),
    dead: Number(r.dead),
    lastVacuum: r.lastVacuum?.toISOString() ?? null,
    lastAutovacuum: r.lastAutovacuum?.toISOString() ?? null,
  }));
}

/** A double-quoted identifier (names come from pg_stat_user_tables, and are quoted all the same). */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Why a step on this table should not start now (another session holds a lock it would conflict
 * with), or undefined. Asked by the step itself just before it acts.
 */
export async function postgresBusyReason(client: pg.Client, schema: string, table: string): Promise<string | undefined> {
  const held = await client.query<{ mode: string; n: string }>(
    `SELECT l.mode, count(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND l.granted AND l.pid <> pg_backend_pid()
       AND l.mode IN ('ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
     GROUP BY l.mode`,
    [schema, table],
  );
  return held.rows.length ? `locks held on ${schema}.${table}: ${held.rows.map((r) => `${r.mode} x${r.n}`).join(', ')}` : undefined;
}

const LOCK_NOT_AVAILABLE = '55P03';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createPostgresMaintenanceActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const policy = config.maintenance.postgres.vacuum;

  async function withClient<T>(database: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ ...connections.postgres(database, 30_000) });
    await client.connect();
    try {
      return await run(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  return {
    /** Every user table of the configured databases: tuples, last vacuum, and whether to vacuum it. Read-only. */
    async planPostgresMaintenance({ now }: { now: string }): Promise<PostgresTablePlan[]> {
      const plans: PostgresTablePlan[] = [];
      const staleBefore = new Date(new Date(now).getTime() - policy.staleAfterDays * 86_400_000).toISOString();
      for (const database of config.postgres.databases) {
        const found = await withClient(database, (client) => stats(client));
        for (const t of found) {
          const full = policy.full.includes(`${t.schema}.${t.table}`);
          const last = [t.lastVacuum, t.lastAutovacuum].filter((d): d is string => d !== null).sort().at(-1);
          const base = { database, schema: t.schema, table: t.table, liveTuples: t.live, deadTuples: t.dead, lastVacuum: t.lastVacuum ?? undefined, lastAutovacuum: t.lastAutovacuum ?? undefined };
          const action = full ? ('vacuum full' as const) : ('vacuum' as const);
          let reason: string | undefined;
          if (!policy.enabled) reason = undefined;
          else if (t.dead >= policy.minDeadTuples && t.dead > policy.deadTupleRatio * t.live) reason = `${t.dead} dead tuples, over ${policy.deadTupleRatio} of ${t.live} live`;
          else if (t.live + t.dead > 0 && (!last || last < staleBefore)) reason = `last vacuumed ${last ?? 'never'}, over ${policy.staleAfterDays} days ago`;
          plans.push(reason ? { ...base, action, reason: full ? `${reason}; VACUUM FULL (maintenance.postgres.vacuum.full names it): takes an exclusive lock` : reason } : { ...base, action: 'none', reason: policy.enabled ? `${t.dead} dead of ${t.live} live, vacuumed ${last ?? 'never'}: nothing to do` : 'vacuum is off (maintenance.postgres.vacuum.enabled)' });
        }
      }
      return plans;
    },

    /**
     * VACUUM (ANALYZE) one table, each attempt waiting at most lock_timeout for its lock, retried.
     * Verified: the dead tuples fell (the statistics are re-read until the vacuum shows in them).
     */
    async vacuumPostgresTable({ step }: { step: VacuumStep }): Promise<StepAttempt> {
      const started = Date.now();
      const result = { id: step.id, kind: step.kind, summary: step.summary, startedAt: new Date(started).toISOString() };
      return withClient(step.database, async (client) => {
        const [before] = await stats(client, step.schema, step.table);
        if (!before) return { ...result, outcome: 'skipped', reason: 'the table is gone' };
        const busy = await postgresBusyReason(client, step.schema, step.table);
        if (busy) return { busy };
        await client.query(`SET lock_timeout = ${Number(policy.lockTimeoutMs)}`);
        const statement = `VACUUM (${step.full ? 'FULL, ' : ''}ANALYZE) ${quoteIdent(step.schema)}.${quoteIdent(step.table)}`;
        let attempts = 0;
        for (;;) {
          attempts++;
          heartbeat({ stepId: step.id, attempt: attempts });
          try {
            await client.query(statement);
            break;
          } catch (err) {
            if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE || attempts > policy.retries) {
              return { ...result, outcome: 'failed', reason: `${statement} failed after ${attempts} attempt(s): ${(err as Error).message}`, before: { deadTuples: before.dead, liveTuples: before.live }, durationMs: Date.now() - started };
            }
            await sleep(Math.min(1000 * attempts, 10_000));
          }
        }
        // The statistics reach pg_stat_user_tables shortly after the vacuum ends.
        let after = before;
        for (let i = 0; i < 20; i++) {
          after = (await stats(client, step.schema, step.table))[0] ?? before;
          if (after.lastVacuum !== before.lastVacuum) break;
          await sleep(250);
        }
        const fell = after.dead < before.dead || before.dead === 0;
        const verified = `dead tuples ${before.dead} -> ${after.dead}${fell ? '' : ' (did not fall: an older transaction may still see them)'}`;
        return {
          ...result,
          outcome: fell ? 'done' : 'failed',
          reason: fell ? (attempts > 1 ? `took ${attempts} attempts (lock timeouts)` : undefined) : `verification failed: ${verified}`,
          before: { deadTuples: before.dead, liveTuples: before.live, lastVacuum: before.lastVacuum ?? undefined },
          after: { deadTuples: after.dead, liveTuples: after.live, lastVacuum: after.lastVacuum ?? undefined },
          verified,
          durationMs: Date.now() - started,
        };
      });
    },
  };
}
