/**
 * The bench's compaction side: a 10-million-row table whose 12 monthly partitions each hold at
 * least 10 active parts, made afresh before every measured run, and the raw loop the `compaction`
 * workflow is measured against.
 */
import type { Client } from '@temporalio/client';
import { qualifiedName } from '../../activities/clickhouse/sql';
import { rows } from '../../activities/clickhouse/tableInfo';
import { readSecret, type LoadedConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';
import type { MaintenanceReport, MergeStep } from '../../contracts/maintenanceTypes';
import { spawnWorker } from '../../localStack/workerProcess';
import { run, timed } from './run';
import { LIMITS, atMost, fmtRatio, fmtSeconds, ratio, type Verdict } from './targets';

export const COMPACTION_DATABASE = 'bench_compaction';
export const COMPACTION_TABLE = 'events';
export const COMPACTION_ROWS = 10_000_000;
/** Inserts per table: each one writes one part into every partition. */
const INSERTS = 10;
const SOURCE_TABLE = 'source';

/**
 * Background merges would fold the parts together before anything is measured (and race the
 * measured merges). A table whose pool may merge nothing bigger than a byte never merges in the
 * background, while OPTIMIZE ... FINAL still merges a whole partition (it is bounded by free disk
 * space only), on 18.16 and on current releases alike.
 */
const NO_BACKGROUND_MERGES = 'SETTINGS max_bytes_to_merge_at_max_space_in_pool = 1';

/**
 * Makes the table afresh: 10 inserts of a tenth of the rows each, every insert spanning all 12
 * months. The rows come from a source table made once and kept. Returns the partitions (oldest
 * first) with their active parts, checked to be at least 10 each.
 */
export async function prepareCompactionTable(loaded: LoadedConfig): Promise<{ partition: string; parts: number }[]> {
  const client = createConnections(loaded.config, loaded.path).clickhouse(1_800_000);
  const source = qualifiedName(COMPACTION_DATABASE, SOURCE_TABLE);
  const table = qualifiedName(COMPACTION_DATABASE, COMPACTION_TABLE);
  const columns = '(event_date Date, event_time DateTime, user_id UInt64, event_type String, amount Float64)';
  try {
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${COMPACTION_DATABASE}` });
    const [found] = await rows<{ n: string }>(client, `SELECT count() AS n FROM system.tables WHERE database = '${COMPACTION_DATABASE}' AND name = '${SOURCE_TABLE}'`);
    const [counted] = Number(found?.n) > 0 ? await rows<{ n: string }>(client, `SELECT count() AS n FROM ${source}`) : [{ n: '0' }];
    if (Number(counted?.n) !== COMPACTION_ROWS) {
      await client.command({ query: `DROP TABLE IF EXISTS ${source}` });
      await client.command({ query: `CREATE TABLE ${source} ${columns} ENGINE = MergeTree() PARTITION BY toYYYYMM(event_date) ORDER BY (event_date, user_id)` });
      await client.command({
        query: `INSERT INTO ${source} SELECT addMonths(toDate('2025-01-01'), number % 12) + (number % 28),
                  toDateTime('2025-01-01 00:00:00') + number, number % 100000,
                  arrayElement(['view','click','cart','purchase'], 1 + number % 4), (number % 10000) / 100
                FROM numbers(${COMPACTION_ROWS})`,
      });
    }
    await client.command({ query: `DROP TABLE IF EXISTS ${table}` });
    await client.command({ query: `CREATE TABLE ${table} ${columns} ENGINE = MergeTree() PARTITION BY toYYYYMM(event_date) ORDER BY (event_date, user_id) ${NO_BACKGROUND_MERGES}` });
    for (let i = 0; i < INSERTS; i++) {
      await client.command({ query: `INSERT INTO ${table} SELECT * FROM ${source} WHERE intDiv(toUInt32(event_time), 12) % ${INSERTS} = ${i}` });
    }
    const partitions = await rows<{ partition: string; parts: string }>(
      client,
      `SELECT partition, count() AS parts FROM system.parts WHERE database = '${COMPACTION_DATABASE}' AND table = '${COMPACTION_TABLE}' AND active GROUP BY partition ORDER BY partition`,
    );
    const made = partitions.map((p) => ({ partition: p.partition, parts: Number(p.parts) }));
    const thin = made.filter((p) => p.parts < INSERTS);
    if (made.length !== 12 || thin.length > 0) {
      throw new Error(`${table}: expected 12 partitions of at least ${INSERTS} parts, found ${made.map((p) => `${p.partition}:${p.parts}`).join(', ')}`);
    }
    return made;
  } finally {
    await client.close();
  }
}

/** The active parts of each partition now. */
export async function partsPerPartition(loaded: LoadedConfig): Promise<Map<string, number>> {
  const client = createConnections(loaded.config, loaded.path).clickhouse();
  try {
    const found = await rows<{ partition: string; parts: string }>(
      client,
      `SELECT partition, count() AS parts FROM system.parts WHERE database = '${COMPACTION_DATABASE}' AND table = '${COMPACTION_TABLE}' AND active GROUP BY partition`,
    );
    return new Map(found.map((p) => [p.partition, Number(p.parts)]));
  } finally {
    await client.close();
  }
}

/**
 * The raw loop the runbook replaces: `clickhouse-client --query "OPTIMIZE TABLE ... PARTITION ...
 * FINAL"`, one partition after another, over the partitions given. Wall time in ms.
 */
export async function rawOptimizeLoop(loaded: LoadedConfig, partitions: string[]): Promise<number> {
  const { config } = loaded;
  const host = new URL(config.clickhouse.url).hostname;
  const password = config.clickhouse.password ? readSecret(config.clickhouse.password, loaded.path) : '';
  const table = qualifiedName(COMPACTION_DATABASE, COMPACTION_TABLE);
  const { ms } = await timed(async () => {
    for (const partition of partitions) {
      await run('clickhouse-client', [
        '--host', host, '--port', String(config.clickhouse.nativePort), '--user', config.clickhouse.user,
        ...(password ? ['--password', password] : []),
        '--query', `OPTIMIZE TABLE ${table} PARTITION ${partition} FINAL`,
      ]);
    }
  });
  return ms;
}

/**
 * compaction (ClickHouse only, in a window that is always open) against the raw loop over the
 * partitions it merged, alternating, each on a table made afresh.
 */
export async function benchCompaction(loaded: LoadedConfig, client: Client, repeats: number, say: (line: string) => void): Promise<Verdict> {
  console.log(`\n[compaction] ${COMPACTION_ROWS} rows, 12 partitions of ${INSERTS} parts each ...`);
  const worker = await spawnWorker(loaded.path);
  try {
    const runs: { ms: number; report: MaintenanceReport }[] = [];
    const loops: number[] = [];
    for (let i = 0; i < repeats; i++) {
      await prepareCompactionTable(loaded);
      const r = await timed(
        () =>
          client.workflow.execute('compaction', {
            taskQueue: loaded.config.temporal.taskQueue,
            workflowId: `bench-compaction-${Date.now()}`,
            args: [{ systems: ['clickhouse'] }],
          }) as Promise<MaintenanceReport>,
      );
      const merged = r.value.plan.steps.filter((s): s is MergeStep => s.kind === 'merge');
      const notDone = r.value.steps.filter((s) => s.outcome !== 'done');
      if (r.value.outcome !== 'completed' || merged.length === 0 || notDone.length > 0) {
        throw new Error(`the benchmark compaction did not merge every partition: ${r.value.outcome}, ${merged.length} merges planned, not done: ${notDone.map((s) => `${s.summary} (${s.outcome}: ${s.reason})`).join('; ')}`);
      }
      const after = await partsPerPartition(loaded);
      const thick = merged.filter((s) => after.get(s.partition) !== 1);
      if (thick.length > 0) throw new Error(`after compaction, partitions ${thick.map((s) => s.partition).join(', ')} still hold more than one part`);
      runs.push({ ms: r.ms, report: r.value });
      await prepareCompactionTable(loaded);
      loops.push(await rawOptimizeLoop(loaded, merged.map((s) => s.partition)));
    }
    const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
    const bestLoop = Math.min(...loops);
    const inSteps = best.report.steps.reduce((n, s) => n + (s.durationMs ?? 0), 0);
    const merges = best.report.plan.steps.filter((s) => s.kind === 'merge').length;
    say(`[compaction] ${merges} partitions merged (the newest left alone); clickhouse-client OPTIMIZE ... FINAL loop over them: ${fmtSeconds(bestLoop)}   compaction (wall): ${fmtSeconds(best.ms)}   ratio ${fmtRatio(ratio(best.ms, bestLoop))}`);
    say(`[compaction]   every run: compaction ${runs.map((r) => fmtSeconds(r.ms)).join(', ')}; loop ${loops.map(fmtSeconds).join(', ')}; the best run's steps ${fmtSeconds(inSteps)}, outside them (plan, report, Temporal) ${fmtSeconds(best.ms - inSteps)}`);
    return atMost('compaction vs OPTIMIZE FINAL loop', ratio(best.ms, bestLoop), LIMITS.compactionRatio, fmtRatio);
  } finally {
    await worker.stop();
  }
}
