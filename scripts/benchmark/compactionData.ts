/**
 * The bench's compaction side: a 10-million-row table whose 12 monthly partitions each hold at
 * least 10 active parts, made afresh before every measured run, and the raw loop the `compaction`
 * workflow is measured against.
 */
import { qualifiedName } from '../../activities/clickhouse/sql';
import { rows } from '../../activities/clickhouse/tableInfo';
import { readSecret, type LoadedConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';
import { run, timed } from './run';

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
