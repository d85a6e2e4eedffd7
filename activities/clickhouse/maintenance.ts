/**
 * ClickHouse maintenance for compaction: the plan read from system tables, and the steps (merge
 * with OPTIMIZE, drop a partition), each idempotent and verified. Works on 18.16 and current
 * releases: which system columns exist is probed, not guessed from the version.
 */
import { createHash } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import { Context } from '@temporalio/activity';
import type { DropStep, MergeStep, PartitionFigures, PartitionPlan, RowDeletePlan, RowDeleteStep, StepAttempt } from '../../contracts/maintenanceTypes';
import { heartbeat } from '../common/heartbeat';
import type { ActivityDeps } from '../deps';
import { planTablePartitions, rowDeleteCutoff, tablePolicy, type PartitionFound } from './maintenancePlan';
import { qualifiedName, quoteIdentifier, quoteString } from './sql';
import { rows } from './tableInfo';

/** What this server's system tables have. */
interface Probe {
  version: string;
  /** system.parts.bytes_on_disk (18.16 and current); bytes on older servers. */
  partBytes: 'bytes_on_disk' | 'bytes';
  /** system.disks: current releases; not 18.16. */
  disks: boolean;
}

async function probe(client: ClickHouseClient): Promise<Probe> {
  const [[version], columns] = await Promise.all([
    rows<{ version: string }>(client, 'SELECT version() AS version'),
    rows<{ table: string; name: string }>(client, "SELECT table, name FROM system.columns WHERE database = 'system' AND table IN ('parts', 'disks')"),
  ]);
  const has = (table: string, name?: string) => columns.some((c) => c.table === table && (name === undefined || c.name === name));
  return { version: version?.version ?? 'unknown', partBytes: has('parts', 'bytes_on_disk') ? 'bytes_on_disk' : 'bytes', disks: has('disks') };
}

/**
 * Free space where the server keeps its parts. 18.16 tells no SQL client (no system.disks, no
 * filesystemAvailable()): when the parts' folder is on this machine, the worker asks the
 * filesystem; otherwise it is unknown, and nothing is merged (the plan says why).
 */
async function freeBytes(client: ClickHouseClient, p: Probe): Promise<number | undefined> {
  if (p.disks) {
    const [row] = await rows<{ free: string }>(client, 'SELECT min(free_space) AS free FROM system.disks');
    return row ? Number(row.free) : undefined;
  }
  const [part] = await rows<{ path: string }>(client, 'SELECT path FROM system.parts WHERE active LIMIT 1');
  if (!part) return undefined;
  try {
    const fs = await statfs(part.path);
    return fs.bavail * fs.bsize;
  } catch {
    return undefined;
  }
}

const where = (database: string, table: string) => `database = ${quoteString(database)} AND table = ${quoteString(table)}`;

/** The active parts of one partition (or the whole table): parts, rows, bytes on disk. */
async function figures(client: ClickHouseClient, p: Probe, database: string, table: string, partitionId?: string): Promise<PartitionFigures> {
  const [row] = await rows<{ parts: string; rows: string; bytes: string }>(
    client,
    `SELECT count() AS parts, sum(rows) AS rows, sum(${p.partBytes}) AS bytes FROM system.parts
     WHERE ${where(database, table)} AND active${partitionId === undefined ? '' : ` AND partition_id = ${quoteString(partitionId)}`}`,
  );
  return { parts: Number(row?.parts ?? 0), rows: Number(row?.rows ?? 0), bytes: Number(row?.bytes ?? 0) };
}

/** Merges running on the server (system.merges has partition_id on 18.16 and current releases). */
async function runningMerges(client: ClickHouseClient): Promise<{ database: string; table: string; partition_id: string; progress: number; elapsed: number }[]> {
  return rows(client, 'SELECT database, table, partition_id, progress, elapsed FROM system.merges');
}

/**
 * Why a ClickHouse step should not start now, or undefined: the server runs more merges than
 * maintenance.clickhouse.maxRunningMerges, or the table has merges or mutations running. One
 * query, asked by the step itself just before it acts.
 */
async function busyReason(client: ClickHouseClient, database: string, table: string, maxRunningMerges: number): Promise<string | undefined> {
  const [load] = await rows<{ merges: string; own: string; mutations: string }>(
    client,
    `SELECT (SELECT count() FROM system.merges) AS merges, (SELECT count() FROM system.merges WHERE ${where(database, table)}) AS own,
       (SELECT count() FROM system.mutations WHERE ${where(database, table)} AND NOT is_done) AS mutations`,
  );
  const [merges, own, mutations] = [Number(load?.merges ?? 0), Number(load?.own ?? 0), Number(load?.mutations ?? 0)];
  if (own > 0) return `${own} merge(s) running on ${database}.${table}`;
  if (merges > maxRunningMerges) return `${merges} merges running on the server (limit ${maxRunningMerges})`;
  if (mutations > 0) return `${mutations} mutation(s) running on ${database}.${table}`;
  return undefined;
}

/** A query id of this step in this run: a retried attempt finds its predecessor's OPTIMIZE by it. */
function stepQueryId(workflowId: string, stepId: string): string {
  return `ballast-compaction-${createHash('sha256').update(`${workflowId}\n${stepId}`).digest('hex').slice(0, 32)}`;
}

async function queryRunning(client: ClickHouseClient, queryId: string): Promise<boolean> {
  const found = await rows<{ n: string }>(client, `SELECT count() AS n FROM system.processes WHERE query_id = ${quoteString(queryId)}`);
  return Number(found[0]?.n ?? 0) > 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The rows a row delete removes: toDate() makes one condition for Date and DateTime columns alike. */
const deleteCondition = (column: string, cutoff: string) => `toDate(${quoteIdentifier(column)}) < toDate(${quoteString(cutoff)})`;

async function count(client: ClickHouseClient, name: string, condition: string): Promise<number> {
  const [row] = await rows<{ n: string }>(client, `SELECT count() AS n FROM ${name} WHERE ${condition}`);
  return Number(row?.n ?? 0);
}

export function createClickHouseMaintenanceActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const policies = config.maintenance.clickhouse;

  /** Tables the plan covers: every MergeTree table of the configured databases (or listed tables). */
  async function tables(client: ClickHouseClient): Promise<{ database: string; table: string; engine: string }[]> {
    const found: { database: string; table: string; engine: string }[] = [];
    for (const db of config.clickhouse.databases) {
      const listed = await rows<{ name: string; engine: string }>(client, `SELECT name, engine FROM system.tables WHERE database = ${quoteString(db.name)} ORDER BY name`);
      for (const t of listed) {
        if (!/MergeTree$/.test(t.engine)) continue;
        if (db.tables.length && !db.tables.includes(t.name)) continue;
        found.push({ database: db.name, table: t.name, engine: t.engine });
      }
    }
    return found;
  }

  return {
    /** Every partition of every covered table with what compaction will do with it, or why not. Read-only. */
    async planClickHouseMaintenance({ now }: { now: string }): Promise<{ server: string; partitions: PartitionPlan[]; rowDeletes: RowDeletePlan[] }> {
      const client = connections.clickhouse(60_000);
      try {
        const p = await probe(client);
        const free = await freeBytes(client, p);
        const merges = await runningMerges(client);
        const partitions: PartitionPlan[] = [];
        const rowDeletes: RowDeletePlan[] = [];
        for (const t of await tables(client)) {
          const { rowDelete } = tablePolicy(policies, t.database, t.table);
          if (rowDelete) {
            const cutoff = rowDeleteCutoff(rowDelete, new Date(now));
            const n = await count(client, qualifiedName(t.database, t.table), deleteCondition(rowDelete.column, cutoff));
            rowDeletes.push({ database: t.database, table: t.table, column: rowDelete.column, cutoff, rows: n });
          }
          const found = await rows<{ partition_id: string; partition: string; parts: string; rows: string; bytes: string; max_date: string; modified: string }>(
            client,
            `SELECT partition_id, any(partition) AS partition, count() AS parts, sum(rows) AS rows, sum(${p.partBytes}) AS bytes,
                    toString(max(max_date)) AS max_date, toString(max(modification_time)) AS modified
             FROM system.parts WHERE ${where(t.database, t.table)} AND active GROUP BY partition_id ORDER BY partition_id`,
          );
          const parsed: PartitionFound[] = found.map((f) => ({
            partitionId: f.partition_id,
            partition: f.partition,
            parts: Number(f.parts),
            rows: Number(f.rows),
            bytes: Number(f.bytes),
            // A partition key without a date column leaves the epoch (or zeros on old servers).
            maxDate: f.max_date <= '1970-01-01' ? '' : f.max_date,
            modified: f.modified,
            mergesRunning: merges.filter((m) => m.database === t.database && m.table === t.table && m.partition_id === f.partition_id).length,
          }));
          partitions.push(...planTablePartitions(t, parsed, tablePolicy(policies, t.database, t.table), free, new Date(now)));
        }
        return { server: p.version, partitions, rowDeletes };
      } finally {
        await client.close();
      }
    },

    /** How far the merge in one partition has got (system.merges), for the status query. */
    async clickhouseMergeProgress({ database, table, partitionId }: { database: string; table: string; partitionId: string }): Promise<{ progress: number; elapsedSeconds: number } | undefined> {
      const client = connections.clickhouse(10_000);
      try {
        const found = (await runningMerges(client)).filter((m) => m.database === database && m.table === table && m.partition_id === partitionId);
        if (!found.length) return undefined;
        return { progress: Math.min(...found.map((m) => Number(m.progress))), elapsedSeconds: Math.max(...found.map((m) => Number(m.elapsed))) };
      } finally {
        await client.close();
      }
    },

    /**
     * OPTIMIZE ... PARTITION ID ... [FINAL], stopped on the server after the merge timeout. Idempotent:
     * a partition already at or under its part limit is not merged again, and an OPTIMIZE that a
     * dead worker's attempt left running is waited for, not started twice.
     */
    async mergeClickHousePartition({ step, workflowId }: { step: MergeStep; workflowId: string }): Promise<StepAttempt> {
      const timeoutMs = config.maintenance.clickhouse.merge.timeoutSeconds * 1000;
      const client = connections.clickhouse(timeoutMs + 60_000);
      const queryId = stepQueryId(workflowId, step.id);
      const name = qualifiedName(step.database, step.table);
      const started = Date.now();
      const ctx = Context.current();
      try {
        // Reads that do not depend on each other go together: a merge of a small partition takes
        // about as long as a few query round trips.
        const [p] = await Promise.all([
          probe(client),
          (async () => {
            while (await queryRunning(client, queryId)) {
              heartbeat({ stepId: step.id, waiting: 'the OPTIMIZE an earlier attempt started' });
              await sleep(1000);
            }
          })(),
        ]);
        const [before, busy] = await Promise.all([figures(client, p, step.database, step.table, step.partitionId), busyReason(client, step.database, step.table, policies.maxRunningMerges)]);
        const result = { id: step.id, kind: step.kind, summary: step.summary, startedAt: new Date(started).toISOString() };
        if (before.parts === 0) return { ...result, outcome: 'skipped', reason: 'the partition is gone (dropped since the plan)' };
        if (before.parts === 1 || before.parts <= step.maxParts) {
          return { ...result, outcome: 'already done', reason: `${before.parts} active part(s) now, not more than ${step.maxParts}`, before: { ...before }, after: { ...before }, durationMs: Date.now() - started };
        }
        if (busy) return { busy };
        const watch = setInterval(() => {
          void runningMerges(client)
            .then((merges) => {
              const m = merges.find((x) => x.database === step.database && x.table === step.table && x.partition_id === step.partitionId);
              heartbeat({ stepId: step.id, partition: step.partition, progress: m ? Number(m.progress) : undefined, elapsedSeconds: (Date.now() - started) / 1000 }, ctx);
            })
            .catch(() => undefined);
        }, 2000);
        const killer = setTimeout(() => void client.command({ query: `KILL QUERY WHERE query_id = ${quoteString(queryId)} ASYNC` }).catch(() => undefined), timeoutMs);
        try {
          // optimize_throw_if_noop: a merge the server declines (no space, parts too big) fails
          // with the server's reason instead of doing nothing silently.
          await client.command({
            query: `OPTIMIZE TABLE ${name} PARTITION ID ${quoteString(step.partitionId)}${step.final ? ' FINAL' : ''}`,
            query_id: queryId,
            clickhouse_settings: { optimize_throw_if_noop: 1 },
          });
        } catch (err) {
          const why = (err as Error).message;
          const timedOut = Date.now() - started >= timeoutMs;
          return { ...result, outcome: 'failed', reason: timedOut ? `stopped after the merge timeout (${timeoutMs / 1000} s): ${why}` : `the server refused the merge: ${why}`, before: { ...before }, durationMs: Date.now() - started };
        } finally {
          clearInterval(watch);
          clearTimeout(killer);
        }
        const after = await figures(client, p, step.database, step.table, step.partitionId);
        const rowsKept = after.rows === before.rows;
        const verified = step.changesRows
          ? `rows ${before.rows} -> ${after.rows} (${step.engine} collapses rows on FINAL); parts ${before.parts} -> ${after.parts}`
          : `rows unchanged (${after.rows}): ${rowsKept ? 'yes' : 'NO'}; parts ${before.parts} -> ${after.parts}`;
        const ok = (step.changesRows ? after.rows <= before.rows : rowsKept) && after.parts <= step.maxParts;
        return {
          ...result,
          outcome: ok ? 'done' : 'failed',
          reason: ok ? undefined : `verification failed: ${verified}`,
          before: { ...before },
          after: { ...after },
          bytesReclaimed: before.bytes - after.bytes,
          verified,
          durationMs: Date.now() - started,
        };
      } finally {
        await client.close();
      }
    },

    /**
     * ALTER TABLE ... DELETE WHERE toDate(column) < cutoff: a mutation, followed in system.mutations
     * until done. Idempotent: no matching row left means done; a mutation an earlier attempt
     * started is waited for, not issued again. Verified: no matching row is left, and every other
     * row is still there.
     */
    async deleteClickHouseRows({ step }: { step: RowDeleteStep }): Promise<StepAttempt> {
      const client = connections.clickhouse(300_000);
      const started = Date.now();
      const name = qualifiedName(step.database, step.table);
      const condition = deleteCondition(step.column, step.cutoff);
      const result = { id: step.id, kind: step.kind, summary: step.summary, startedAt: new Date(started).toISOString() };
      try {
        const matching = await count(client, name, condition);
        const kept = await count(client, name, `NOT (${condition})`);
        const pending = () => rows<{ mutation_id: string; parts_to_do: string }>(client, `SELECT mutation_id, parts_to_do FROM system.mutations WHERE ${where(step.database, step.table)} AND NOT is_done`);
        if (matching === 0 && (await pending()).length === 0) return { ...result, outcome: 'already done', reason: 'no matching row is left', after: { rows: 0 }, durationMs: Date.now() - started };
        // A mutation an earlier attempt issued is followed; only a new one waits for a quiet table.
        if ((await pending()).length === 0) {
          const busy = await busyReason(client, step.database, step.table, policies.maxRunningMerges);
          if (busy) return { busy };
          await client.command({ query: `ALTER TABLE ${name} DELETE WHERE ${condition}` });
        }
        for (let left = await pending(); left.length; left = await pending()) {
          heartbeat({ stepId: step.id, mutations: left.map((m) => `${m.mutation_id}: ${m.parts_to_do} part(s) to do`) });
          await sleep(1000);
        }
        const after = await count(client, name, condition);
        const keptAfter = await count(client, name, `NOT (${condition})`);
        const ok = after === 0 && keptAfter >= kept;
        const verified = `matching rows ${matching} -> ${after}; other rows ${kept} -> ${keptAfter}`;
        return { ...result, outcome: ok ? 'done' : 'failed', reason: ok ? undefined : `verification failed: ${verified}`, before: { rows: matching }, after: { rows: after }, verified, durationMs: Date.now() - started };
      } finally {
        await client.close();
      }
    },

    /**
     * ALTER TABLE ... DROP PARTITION ID, only of the partition approved, only if it still holds what
     * the plan said. Idempotent: a partition already gone is not dropped again. Verified: it is
     * gone, and the table lost exactly its rows.
     */
    async dropClickHousePartition({ step }: { step: DropStep }): Promise<StepAttempt> {
      const client = connections.clickhouse(300_000);
      const started = Date.now();
      const name = qualifiedName(step.database, step.table);
      const result = { id: step.id, kind: step.kind, summary: step.summary, startedAt: new Date(started).toISOString() };
      try {
        const p = await probe(client);
        const before = await figures(client, p, step.database, step.table, step.partitionId);
        if (before.parts === 0) return { ...result, outcome: 'already done', reason: 'the partition is already gone', verified: 'partition absent', durationMs: Date.now() - started };
        if (before.rows !== step.before.rows) {
          return { ...result, outcome: 'skipped', reason: `the partition holds ${before.rows} rows, the approved plan ${step.before.rows}: not dropped; the next run plans afresh`, before: { ...before } };
        }
        const busy = await busyReason(client, step.database, step.table, policies.maxRunningMerges);
        if (busy) return { busy };
        const tableBefore = await figures(client, p, step.database, step.table);
        await client.command({ query: `ALTER TABLE ${name} DROP PARTITION ID ${quoteString(step.partitionId)}` });
        const after = await figures(client, p, step.database, step.table, step.partitionId);
        const tableAfter = await figures(client, p, step.database, step.table);
        const exact = after.parts === 0 && tableAfter.rows === tableBefore.rows - before.rows;
        const verified = `partition gone: ${after.parts === 0 ? 'yes' : 'NO'}; table rows ${tableBefore.rows} -> ${tableAfter.rows} (expected ${tableBefore.rows - before.rows})`;
        return {
          ...result,
          outcome: exact ? 'done' : 'failed',
          reason: exact ? undefined : `verification failed: ${verified}`,
          before: { ...before },
          after: { ...after },
          bytesReclaimed: before.bytes,
          verified,
          durationMs: Date.now() - started,
        };
      } finally {
        await client.close();
      }
    },
  };
}
