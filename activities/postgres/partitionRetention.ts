/**
 * Postgres partition retention for compaction: the partitions of each policy's table that end
 * before the cutoff (read-only plan), and the step that detaches one, then drops it. The step acts
 * only on the very table the approval named (its oid), attached with the approved bounds, and
 * marks it before detaching, so a retry after a worker's death drops only what its run detached.
 */
import pg from 'pg';
import type { PgPartitionDropStep, PostgresPartition, PostgresPartitionPlan, StepAttempt, StepResult } from '../../contracts/maintenanceTypes';
import { heartbeat } from '../common/heartbeat';
import type { ActivityDeps } from '../deps';
import { judgePartition, keyProblem, partitionCutoff, type PartitionKey } from './partitionRetentionPlan';
import { postgresBusyReason } from './vacuum';

const LOCK_NOT_AVAILABLE = '55P03';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const qualified = (schema: string, table: string) => `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)}`;

const RELKINDS: Record<string, string> = { r: 'a plain table', v: 'a view', m: 'a materialized view', f: 'a foreign table', S: 'a sequence', i: 'an index' };

/** pg_inherits.inhdetachpending (DETACH CONCURRENTLY, Postgres 14 and later), or false before it existed. */
async function pendingColumn(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  return Number(rows[0]!.v) >= 140_000 ? 'i.inhdetachpending' : 'false';
}

interface Relation {
  schema: string;
  name: string;
  isPartition: boolean;
  /** The parent's oid while it is a partition. */
  parent: number | undefined;
  bounds: string | undefined;
  /** A DETACH CONCURRENTLY that did not finish. */
  pending: boolean;
  comment: string | undefined;
}

/** The table with this oid, as the catalog has it now, or undefined when there is none. */
async function relation(client: pg.Client, oid: number, pending: string): Promise<Relation | undefined> {
  const { rows } = await client.query<{ schema: string; name: string; isPartition: boolean; parent: number | null; bounds: string | null; pending: boolean | null; comment: string | null }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relispartition AS "isPartition", i.inhparent AS parent,
            pg_get_expr(c.relpartbound, c.oid) AS bounds, ${pending} AS pending, obj_description(c.oid, 'pg_class') AS comment
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition
     WHERE c.oid = $1`,
    [oid],
  );
  const r = rows[0];
  return r && { schema: r.schema, name: r.name, isPartition: r.isPartition, parent: r.parent === null ? undefined : Number(r.parent), bounds: r.bounds ?? undefined, pending: r.pending === true, comment: r.comment ?? undefined };
}

/** The oid a "schema.table" name resolves to now, if any. */
async function oidOf(client: pg.Client, name: string): Promise<number | undefined> {
  const { rows } = await client.query<{ oid: number | null }>('SELECT to_regclass($1)::oid AS oid', [name]);
  return rows[0]?.oid == null ? undefined : Number(rows[0].oid);
}

/** The partitions attached to a parent (a pending detach is not attached any more), by oid. */
async function attached(client: pg.Client, parentOid: number, pending: string): Promise<number[]> {
  const { rows } = await client.query<{ oid: number }>(`SELECT i.inhrelid AS oid FROM pg_inherits i WHERE i.inhparent = $1 AND NOT ${pending} ORDER BY 1`, [parentOid]);
  return rows.map((r) => Number(r.oid));
}

/** Rows (counted) and bytes of a table with its own partitions, if it has any. */
async function figures(client: pg.Client, oid: number, name: string): Promise<{ rows: number; bytes: number }> {
  const { rows } = await client.query<{ rows: string; bytes: string }>(
    `SELECT (SELECT count(*) FROM ${name}) AS rows, (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree($1::oid::regclass) t) AS bytes`,
    [oid],
  );
  return { rows: Number(rows[0]!.rows), bytes: Number(rows[0]!.bytes) };
}

/** The comment a step puts on a partition before detaching it: only a detached table bearing it is dropped. */
export function detachMarker(workflowId: string, stepId: string): string {
  return `ballast compaction ${workflowId}: detaching to drop (${stepId})`;
}

export function createPostgresPartitionRetentionActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const { lockTimeoutMs, retries } = config.maintenance.postgres.vacuum;

  /**
   * A connection whose pg_get_expr writes bounds in UTC and ISO dates: the plan and the step read
   * the same text for the same bounds, whatever the server's defaults.
   */
  async function withClient<T>(database: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ ...connections.postgres(database, 30_000) });
    await client.connect();
    try {
      await client.query("SET TimeZone = 'UTC'");
      await client.query("SET DateStyle = 'ISO, YMD'");
      return await run(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Runs `attempt` until it gets its locks within lock_timeout, at most 1 + retries times; its last error if it never does. */
  async function withLockRetries(stepId: string, what: string, attempt: () => Promise<unknown>): Promise<{ attempts: number; error?: Error }> {
    for (let attempts = 1; ; attempts++) {
      heartbeat({ stepId, what, attempt: attempts });
      try {
        await attempt();
        return { attempts };
      } catch (err) {
        if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE || attempts > retries) return { attempts, error: err as Error };
        await sleep(Math.min(1000 * attempts, 10_000));
      }
    }
  }

  async function planTable(client: pg.Client, database: string, table: string, cutoff: string): Promise<PostgresPartitionPlan> {
    const base: PostgresPartitionPlan = { database, table, cutoff, partitions: [] };
    const [schema, name] = table.split('.') as [string, string];
    const parentName = qualified(schema, name);
    const { rows: found } = await client.query<{ oid: number; relkind: string }>(
      'SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2',
      [schema, name],
    );
    const parent = found[0];
    if (!parent) return { ...base, problem: `no table ${table} in database ${database}` };
    const oid = Number(parent.oid);
    if (parent.relkind !== 'p') return { ...base, oid, problem: `${table} is ${RELKINDS[parent.relkind] ?? `of relkind ${parent.relkind}`}, not a partitioned table: retention drops whole partitions only` };
    const { rows: keys } = await client.query<{ definition: string; strategy: string; columns: number; type: string | null }>(
      `SELECT pg_get_partkeydef(pt.partrelid) AS definition, pt.partstrat AS strategy, pt.partnatts AS columns, format_type(a.atttypid, NULL) AS type
       FROM pg_partitioned_table pt LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
       WHERE pt.partrelid = $1`,
      [oid],
    );
    const key: PartitionKey = { definition: keys[0]!.definition, strategy: keys[0]!.strategy, columns: Number(keys[0]!.columns), type: keys[0]!.type ?? undefined };
    const problem = keyProblem(key);
    if (problem) return { ...base, oid, key: key.definition, problem };
    const pending = await pendingColumn(client);
    const { rows: children } = await client.query<{ oid: number; schema: string; name: string; relkind: string; bounds: string; pending: boolean; bytes: string; estimate: string }>(
      `SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind, pg_get_expr(c.relpartbound, c.oid) AS bounds, ${pending} AS pending,
              (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t) AS bytes,
              (SELECT coalesce(sum(greatest(k.reltuples, 0)), 0)::bigint FROM pg_partition_tree(c.oid) t JOIN pg_class k ON k.oid = t.relid WHERE t.isleaf) AS estimate
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE i.inhparent = $1 ORDER BY n.nspname, c.relname`,
      [oid],
    );
    const partitions: PostgresPartition[] = [];
    for (const c of children) {
      const childName = qualified(c.schema, c.name);
      const judged =
        c.pending ? { action: 'none' as const, reason: `a DETACH CONCURRENTLY of it did not finish: ALTER TABLE ${parentName} DETACH PARTITION ${childName} FINALIZE completes it; not dropped` }
        : c.relkind === 'f' ? { action: 'none' as const, reason: 'a foreign table: retention drops only tables of this database' }
        : judgePartition(c.bounds, cutoff);
      // Only the partitions to drop are counted: a count of the kept ones would scan the hot data every night.
      const rows = judged.action === 'drop' ? Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${childName}`)).rows[0]!.n) : Number(c.estimate);
      partitions.push({ schema: c.schema, name: c.name, oid: Number(c.oid), bounds: c.bounds, rows, rowsCounted: judged.action === 'drop', bytes: Number(c.bytes), ...judged });
    }
    return { ...base, oid, key: key.definition, partitions };
  }

  return {
    /** Every retention policy's table in each of its databases: the partitions, and which end before the cutoff. Read-only. */
    async planPostgresPartitionRetention({ now }: { now: string }): Promise<PostgresPartitionPlan[]> {
      const plans: PostgresPartitionPlan[] = [];
      for (const policy of config.maintenance.postgres.retention) {
        const cutoff = partitionCutoff(policy, new Date(now));
        for (const database of policy.database === undefined ? config.postgres.databases : [policy.database]) {
          plans.push(await withClient(database, (client) => planTable(client, database, policy.table, cutoff)));
        }
      }
      return plans;
    },

    /**
     * ALTER TABLE parent DETACH PARTITION child (CONCURRENTLY from Postgres 14 on, unless the parent
     * has a DEFAULT partition), then DROP TABLE child, each with the short lock_timeout, retried.
     * Only the planned table (oid), still attached with the approved bounds and rows; it is marked
     * (a comment naming the run and step) before the detach, and only a detached table with that
     * mark is dropped: a retry finishes a pending detach (FINALIZE) or drops what its run
     * detached, and finds a dropped one "already done". Verified: the partition is gone and every
     * other partition of the parent is still attached.
     */
    async dropPostgresPartition({ step, workflowId }: { step: PgPartitionDropStep; workflowId: string }): Promise<StepAttempt> {
      const started = Date.now();
      const result = { id: step.id, kind: step.kind, summary: step.summary, startedAt: new Date(started).toISOString() };
      const parentName = qualified(step.schema, step.table);
      const childName = qualified(step.partitionSchema, step.partition);
      const marker = detachMarker(workflowId, step.id);
      const changed = (why: string): StepResult => ({ ...result, outcome: 'skipped', reason: `changed since the plan was approved: ${why}; not dropped, the next run plans afresh`, durationMs: Date.now() - started });
      const failed = (reason: string, before?: StepResult['before']): StepResult => ({ ...result, outcome: 'failed', reason, before, durationMs: Date.now() - started });

      return withClient(step.database, async (client): Promise<StepAttempt> => {
        const pending = await pendingColumn(client);
        const found = await relation(client, step.partitionOid, pending);
        if (!found) {
          const other = await oidOf(client, childName);
          if (other !== undefined) return changed(`${step.partitionSchema}.${step.partition} is another table now (oid ${other}, the plan's ${step.partitionOid})`);
          return { ...result, outcome: 'already done', reason: 'the partition is already gone', verified: 'partition absent', durationMs: Date.now() - started };
        }
        if (found.schema !== step.partitionSchema || found.name !== step.partition) {
          const other = await oidOf(client, childName);
          return changed(`the planned partition (oid ${step.partitionOid}) is now named ${found.schema}.${found.name}${other === undefined ? '' : `, and ${step.partitionSchema}.${step.partition} is another table (oid ${other})`}`);
        }
        if ((await oidOf(client, parentName)) !== step.parentOid) return changed(`${step.schema}.${step.table} is not the planned table any more`);
        const ours = found.comment === marker;
        if (found.isPartition) {
          if (found.parent !== step.parentOid) return changed(`${step.partitionSchema}.${step.partition} is now a partition of another table`);
          if (found.bounds !== step.bounds) return changed(`${step.partitionSchema}.${step.partition} is now ${found.bounds}, the plan's ${step.bounds}`);
          if (found.pending && !ours) return changed('someone else started a DETACH CONCURRENTLY of it');
        } else if (!ours) return changed(`${step.partitionSchema}.${step.partition} was detached by someone else`);

        const partitions = await attached(client, step.parentOid, pending);
        const others = partitions.filter((oid) => oid !== step.partitionOid);
        const figured = await figures(client, step.partitionOid, childName);
        const before = { partitions: partitions.length, rows: figured.rows, bytes: figured.bytes };
        if (found.isPartition && !found.pending && figured.rows !== step.before.rows) {
          return { ...result, outcome: 'skipped', reason: `the partition holds ${figured.rows} rows, the approved plan ${step.before.rows}: not dropped; the next run plans afresh`, before, durationMs: Date.now() - started };
        }
        // A new detach waits for a quiet parent; what an earlier attempt of this run began is finished regardless.
        if (found.isPartition && !ours) {
          const busy = await postgresBusyReason(client, step.schema, step.table);
          if (busy) return { busy };
        }
        await client.query(`SET lock_timeout = ${Number(lockTimeoutMs)}`);
        const comment = (text: string | undefined) => withLockRetries(step.id, 'COMMENT', () => client.query(`COMMENT ON TABLE ${childName} IS ${text === undefined ? 'NULL' : pg.escapeLiteral(text)}`));

        let how = 'detached by an earlier attempt';
        if (found.isPartition) {
          if (!ours) {
            const marked = await comment(marker);
            if (marked.error) return failed(`marking ${childName} before the detach failed after ${marked.attempts} attempt(s): ${marked.error.message}; nothing changed`, before);
          }
          const { rows: parentRows } = await client.query<{ hasDefault: boolean }>('SELECT partdefid <> 0 AS "hasDefault" FROM pg_partitioned_table WHERE partrelid = $1', [step.parentOid]);
          // CONCURRENTLY leaves readers and writers of the parent alone; Postgres refuses it beside a DEFAULT partition.
          const concurrently = pending !== 'false' && !parentRows[0]?.hasDefault;
          let statement = '';
          const detached = await withLockRetries(step.id, 'DETACH', async () => {
            const now = await relation(client, step.partitionOid, pending);
            if (!now?.isPartition) return;
            statement = `ALTER TABLE ${parentName} DETACH PARTITION ${childName}${now.pending ? ' FINALIZE' : concurrently ? ' CONCURRENTLY' : ''}`;
            how = now.pending ? 'detach FINALIZEd' : concurrently ? 'detached CONCURRENTLY' : `detached${pending === 'false' ? '' : ' (not CONCURRENTLY: the parent has a DEFAULT partition)'}`;
            await client.query(statement);
          });
          if (detached.error) {
            const now = await relation(client, step.partitionOid, pending);
            if (now?.pending) {
              return failed(`${statement} failed after ${detached.attempts} attempt(s): ${detached.error.message}; the detach is pending: ALTER TABLE ${parentName} DETACH PARTITION ${childName} FINALIZE completes it (the table is then detached, not dropped)`, before);
            }
            const restored: { error?: Error } = ours ? {} : await comment(found.comment);
            return failed(`${statement} failed after ${detached.attempts} attempt(s): ${detached.error.message}; still attached${restored.error ? `, its comment still reads "${marker}"` : ', nothing changed'}`, before);
          }
        }

        // The drop re-checks, under the table's lock, that the name still means the table this run detached.
        let refused: string | undefined;
        const dropped = await withLockRetries(step.id, 'DROP', async () => {
          await client.query('BEGIN');
          try {
            await client.query(`LOCK TABLE ${childName} IN ACCESS EXCLUSIVE MODE`);
            const now = await relation(client, step.partitionOid, pending);
            if (!now || now.isPartition || now.comment !== marker || now.schema !== step.partitionSchema || now.name !== step.partition) {
              refused = now
                ? `after the detach, ${childName} is not the table this run detached: nothing dropped; the detached partition (oid ${step.partitionOid}) is left as it is`
                : `after the detach, the partition (oid ${step.partitionOid}) is gone and ${childName} names another table: nothing dropped`;
              await client.query('ROLLBACK');
              return;
            }
            await client.query(`DROP TABLE ${childName}`);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK');
            throw err;
          }
        });
        if (refused) return failed(refused, before);
        if (dropped.error) {
          // A table nobody can reach through the parent is worse than no drop: put it back as it was.
          const back = await withLockRetries(step.id, 'ATTACH', async () => {
            if ((await oidOf(client, childName)) !== step.partitionOid) throw new Error(`${childName} is not the detached partition (oid ${step.partitionOid})`);
            await client.query(`ALTER TABLE ${parentName} ATTACH PARTITION ${childName} ${step.bounds}`);
          });
          if (!back.error) await comment(found.comment === marker ? undefined : found.comment);
          const state = back.error ? `left DETACHED (re-attaching failed: ${back.error.message}); ALTER TABLE ${parentName} ATTACH PARTITION ${childName} ${step.bounds} puts it back` : 're-attached with its bounds, nothing lost';
          return failed(`DROP TABLE ${childName} failed after ${dropped.attempts} attempt(s): ${dropped.error.message}; ${state}`, before);
        }

        const gone = (await relation(client, step.partitionOid, pending)) === undefined;
        const after = await attached(client, step.parentOid, pending);
        const intact = others.every((oid) => after.includes(oid));
        const verified = `${how}; partition gone: ${gone ? 'yes' : 'NO'}; the other ${others.length} partition(s) still attached: ${intact ? 'yes' : `NO (missing oid(s) ${others.filter((oid) => !after.includes(oid)).join(', ')})`}`;
        return {
          ...result,
          outcome: gone && intact ? 'done' : 'failed',
          reason: gone && intact ? (ours && (found.pending || !found.isPartition) ? 'finished the detach an earlier attempt of this run started' : undefined) : `verification failed: ${verified}`,
          before,
          after: { partitions: after.length, rows: 0, bytes: 0 },
          bytesReclaimed: figured.bytes,
          verified,
          durationMs: Date.now() - started,
        };
      });
    },
  };
}
