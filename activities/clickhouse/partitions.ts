/**
 * A table's partitions as a backup sees them: listed from system.parts, each selected by a WHERE
 * its export and its count share, and counted before the export so the piece records its rows.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { backOff } from 'exponential-backoff';
import type { BackupPiece } from '../../contracts/backupTypes';
import { partitionCondition, quoteString } from './sql';
import { rows, type TableInfo } from './tableInfo';

export interface PartitionInfo {
  partitionId: string;
  /** system.parts' `partition`: a SQL literal such as 202601, '2026-01-01', (202601, 'eu'), tuple(). */
  partition: string;
  rows: number;
  parts: number;
}

/** How many times to re-read counts when a partition changes between the reads. */
const COUNT_ATTEMPTS = 3;

/** Active partitions with their row and part counts, from system.parts. */
export async function listPartitions(client: ClickHouseClient, database: string, table: string): Promise<PartitionInfo[]> {
  const found = await rows<{ partition_id: string; partition: string; rows: string | number; parts: string | number }>(
    client,
    `SELECT partition_id, any(partition) AS partition, sum(rows) AS rows, count() AS parts FROM system.parts
     WHERE database = ${quoteString(database)} AND table = ${quoteString(table)} AND active
     GROUP BY partition_id ORDER BY partition_id`,
  );
  return found.map((p) => ({ partitionId: p.partition_id, partition: p.partition, rows: Number(p.rows), parts: Number(p.parts) }));
}

interface PartitionSelection {
  where?: string;
  by: 'whole table' | 'partition expression' | '_partition_id';
}

/**
 * How to select one partition's rows. `(<PARTITION BY expression>) = <system.parts.partition
 * literal>` first: every version prunes the other partitions with it. `_partition_id = '<id>'` only
 * when no such condition can be written: 18.16 has the column but reads the whole table for it.
 * Unpartitioned tables (partition id 'all', partition 'tuple()') need no condition.
 */
export function partitionSelection(info: TableInfo, partition: PartitionInfo): PartitionSelection {
  if (partition.partition === 'tuple()' || (partition.partitionId === 'all' && !info.partitionKey)) return { by: 'whole table' };
  let condition: string | undefined;
  try {
    condition = partitionCondition(info.partitionKey, partition.partition);
  } catch (err) {
    if (!info.partitionIdColumn) throw err;
  }
  if (condition) return { where: condition, by: 'partition expression' };
  if (info.partitionIdColumn) return { where: `_partition_id = ${quoteString(partition.partitionId)}`, by: '_partition_id' };
  throw new Error(`cannot select partition ${partition.partitionId}: no partition expression known`);
}

/** A partition as counted before its export. */
export interface CountedPartition extends PartitionInfo {
  /** count() through the export's WHERE: the rows its object holds. */
  counted: number;
  /** `counted` equalled the active parts' rows, and those parts did not change while it ran. */
  countVerified: boolean;
  note?: string;
}

/** How many partitions one counting query covers, to keep the query text bounded. */
const COUNT_BATCH = 50;

/**
 * Every partition's count() (or, with `only`, those partitions') through the same WHERE as its
 * export, checked against system.parts' active rows read on both sides of it. When they differ on partitions that did not change, the
 * whole table tells why: if its count() equals its parts' rows, a WHERE does not select exactly its
 * partition (the partition expression was rendered wrong)
 * and the backup fails rather than record wrong data; if the whole table differs too, this user
 * reads fewer rows than are stored (row filters, lightweight deletes on current releases) and
 * `counted` is what the export holds.
 */
export async function countPartitions(
  client: ClickHouseClient,
  name: string,
  database: string,
  table: string,
  info: TableInfo,
  only?: ReadonlySet<string>,
): Promise<CountedPartition[]> {
  let before = (await listPartitions(client, database, table)).filter((p) => !only || only.has(p.partitionId));
  try {
    return await backOff(
      async () => {
        const each = await countWhere(client, name, before.map((p) => partitionSelection(info, p).where));
        const after = new Map((await listPartitions(client, database, table)).map((p) => [p.partitionId, p]));
        const stable = (p: PartitionInfo) => after.get(p.partitionId)?.rows === p.rows && after.get(p.partitionId)?.parts === p.parts;
        const counted: CountedPartition[] = before.map((p, i) => ({ ...p, counted: each[i]!, countVerified: stable(p) && each[i] === p.rows }));
        const mismatched = counted.filter((p) => stable(p) && !p.countVerified);
        if (mismatched.length > 0) {
          // The whole table's rows, for the whole table's count(): with `only`, `before` holds part of it.
          const stored = (only ? [...after.values()] : before).reduce((n, p) => n + p.rows, 0);
          const wrong = mismatched[0]!;
          const where = partitionSelection(info, wrong).where;
          if (where && before.every(stable) && (await countWhere(client, name, [undefined]))[0] === stored) {
            throw new Error(
              `${database}.${table} partition ${wrong.partitionId}: the export's WHERE (${where}) counts ${wrong.counted} rows, system.parts has ${wrong.rows}`,
            );
          }
          for (const p of mismatched) {
            p.note = 'this user reads fewer rows than the parts hold (row filters or deleted rows): rows counts what was exported';
          }
        }
        if (before.every(stable)) return counted;
        before = [...after.values()].filter((p) => before.some((b) => b.partitionId === p.partitionId));
        throw new PartitionsChanged(counted);
      },
      // A partition that changed between the reads is no failure to wait out: it is counted again
      // at once.
      { numOfAttempts: COUNT_ATTEMPTS, startingDelay: 0, retry: (err) => err instanceof PartitionsChanged },
    );
  } catch (err) {
    if (!(err instanceof PartitionsChanged)) throw err;
    for (const p of err.counted) if (!p.countVerified && !p.note) p.note = 'the partition changed while it was counted (inserts or merges)';
    return err.counted;
  }
}

/** The last count, when its partitions changed while it ran. */
class PartitionsChanged extends Error {
  constructor(readonly counted: CountedPartition[]) {
    super('partitions changed while they were counted');
  }
}

/**
 * count() through each condition (undefined: the whole table), as one UNION ALL per batch: one
 * round trip, and each branch still prunes to its own partition, which countIf() would not.
 */
async function countWhere(client: ClickHouseClient, name: string, conditions: (string | undefined)[]): Promise<number[]> {
  const counts: number[] = [];
  for (let at = 0; at < conditions.length; at += COUNT_BATCH) {
    const batch = conditions.slice(at, at + COUNT_BATCH);
    const query = batch
      .map((c, i) => `SELECT ${at + i} AS i, count() AS n FROM ${name}${c ? ` WHERE ${c}` : ''}`)
      .join(' UNION ALL ');
    for (const row of await rows<{ i: string | number; n: string | number }>(client, query)) counts[Number(row.i)] = Number(row.n);
  }
  return conditions.map((_, i) => counts[i] ?? 0);
}

/**
 * Final say on a partition piece's row count: verified when it was counted exactly and its active
 * parts are still the ones it was counted from (no insert or merge touched it since).
 */
export function settleRowsVerified(piece: BackupPiece, now: Map<string, PartitionInfo>): void {
  const details = piece.details as { partitionId: string; rowsVerified: boolean; countedFrom: { parts: number; partRows: number } };
  const current = now.get(details.partitionId);
  const unchanged = current?.rows === details.countedFrom.partRows && current?.parts === details.countedFrom.parts;
  if (!unchanged) {
    details.rowsVerified = false;
    Object.assign(details, { changedDuringExport: { rowsAfter: current?.rows ?? 0, partsAfter: current?.parts ?? 0 } });
  }
}
