/**
 * What compaction does with each ClickHouse partition, decided from system tables' figures. Pure:
 * the activities in maintenance.ts read the figures, test/unit/maintenancePlan.test.ts checks the rules.
 */
import type { MaintenanceConfig } from '../../contracts/maintenanceConfig';
import type { PartitionPlan } from '../../contracts/maintenanceTypes';

type Policies = MaintenanceConfig['clickhouse'];
type TableEntry = Policies['tables'][number];

export interface TablePolicy {
  merge: Policies['merge'];
  retention?: NonNullable<TableEntry['retention']>;
  rowDelete?: NonNullable<TableEntry['rowDelete']>;
}

/** The merge and retention policy of one table: the section's, then its database's entry, then its own. */
export function tablePolicy(policies: Policies, database: string, table: string): TablePolicy {
  const entries = [...policies.tables.filter((t) => t.database === database && t.table === undefined), ...policies.tables.filter((t) => t.database === database && t.table === table)];
  let merge = policies.merge;
  let retention: TablePolicy['retention'];
  let rowDelete: TablePolicy['rowDelete'];
  for (const entry of entries) {
    merge = { ...merge, ...definedOnly(entry.merge ?? {}) };
    retention = entry.retention ?? retention;
    rowDelete = entry.rowDelete ?? rowDelete;
  }
  return { merge, retention, rowDelete };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Engines on which a merge (FINAL above all) collapses, replaces or sums rows. */
export function mergeChangesRows(engine: string): boolean {
  return /(Replacing|Collapsing|Summing|Aggregating|Graphite)MergeTree$/.test(engine);
}

/** The first day (YYYY-MM-DD, UTC) whose rows a row-delete policy keeps. */
export function rowDeleteCutoff(rowDelete: NonNullable<TablePolicy['rowDelete']>, now: Date): string {
  return new Date(now.getTime() - rowDelete.keepDays * 86_400_000).toISOString().slice(0, 10);
}

/** The first day (YYYY-MM-DD, UTC) a kept partition may hold: older partitions are dropped. */
export function retentionCutoff(retention: NonNullable<TablePolicy['retention']>, now: Date): string {
  if (retention.keepMonths !== undefined) {
    const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (retention.keepMonths - 1), 1));
    return first.toISOString().slice(0, 10);
  }
  return new Date(now.getTime() - retention.keepDays! * 86_400_000).toISOString().slice(0, 10);
}

export interface PartitionFound {
  partitionId: string;
  partition: string;
  parts: number;
  rows: number;
  bytes: number;
  /** '' when the partition key has no date column (system.parts shows 1970-01-01 or 0000-00-00). */
  maxDate: string;
  /** The newest part's modification time, to find the newest partition when there is no date. */
  modified: string;
  /** Merges the server runs in this partition now. */
  mergesRunning: number;
}

/**
 * Each partition of one table with its action and reason. Never touched: the newest partition
 * (still written to). Dropped: partitions whose newest date is before the retention cutoff.
 * Merged: the others with more than maxParts active parts, under the size cap, while the disk has
 * twice the partition's size free and no merge runs in it already.
 */
export function planTablePartitions(
  table: { database: string; table: string; engine: string },
  partitions: PartitionFound[],
  policy: TablePolicy,
  freeBytes: number | undefined,
  now: Date,
): PartitionPlan[] {
  const newest = [...partitions].sort((a, b) => (a.maxDate + a.modified < b.maxDate + b.modified ? 1 : -1))[0]?.partitionId;
  const cutoff = policy.retention ? retentionCutoff(policy.retention, now) : undefined;
  return partitions.map((p): PartitionPlan => {
    const base = { ...table, partitionId: p.partitionId, partition: p.partition, parts: p.parts, rows: p.rows, bytes: p.bytes, maxDate: p.maxDate || undefined };
    if (p.partitionId === newest) return { ...base, action: 'none', reason: 'the newest partition (still written to): never merged or dropped' };
    if (cutoff !== undefined) {
      if (!p.maxDate) return { ...base, ...mergeDecision(table.engine, p, policy, freeBytes, 'retention: the partition key has no date column, so its age is unknown; ') };
      if (p.maxDate < cutoff) return { ...base, action: 'drop', reason: `retention: newest date ${p.maxDate} is before ${cutoff}` };
    }
    return { ...base, ...mergeDecision(table.engine, p, policy, freeBytes, '') };
  });
}

function mergeDecision(engine: string, p: PartitionFound, policy: TablePolicy, freeBytes: number | undefined, prefix: string): Pick<PartitionPlan, 'action' | 'reason'> {
  const m = policy.merge;
  const none = (why: string) => ({ action: 'none' as const, reason: `${prefix}${why}` });
  if (!m.enabled) return none('merges are off for this table');
  if (p.parts <= m.maxParts) return none(`${p.parts} active part(s), not more than ${m.maxParts}`);
  if (p.bytes > m.maxPartitionBytes) return none(`too big: ${p.bytes} bytes, over the cap of ${m.maxPartitionBytes}`);
  if (freeBytes === undefined) return none('free disk space unknown: not merging without it');
  if (freeBytes < 2 * p.bytes) return none(`not enough free disk: ${freeBytes} bytes free, a merge needs twice the partition's ${p.bytes}`);
  if (p.mergesRunning > 0) return none(`${p.mergesRunning} merge(s) already running in it`);
  const rows = m.final && mergeChangesRows(engine) ? `; FINAL on ${engine} collapses rows: the row count may fall` : '';
  return { action: 'merge', reason: `${prefix}${p.parts} active parts, more than ${m.maxParts}${m.final ? ', merged with FINAL into one' : ''}${rows}` };
}
