/**
 * The bench's ClickHouse side: its tables (made once and kept between runs), and the raw export
 * the backup is measured against.
 */
import { randomUUID } from 'node:crypto';
import { mapLimit } from '../../contracts/concurrency';
import { listPartitions, partitionSelection } from '../../activities/clickhouse/partitions';
import { qualifiedName } from '../../activities/clickhouse/sql';
import { detectServer, readTable, rows } from '../../activities/clickhouse/tableInfo';
import { readSecret, type LoadedConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';
import { run, timed } from './run';
import type { PreparedDatabase } from './postgresData';

export const BENCH_TABLE = 'events';

/**
 * Partitions exported at once by the raw export: the backup's own number
 * (PARTITION_CONCURRENCY in activities/clickhouse/backup.ts), so both ask the server alike.
 */
const RAW_EXPORT_CONCURRENCY = 3;

/** A table of `rowCount` rows over 12 monthly partitions, kept when it already holds exactly that many. */
export async function prepareClickHouse(loaded: LoadedConfig, database: string, rowCount: number): Promise<Omit<PreparedDatabase, 'diskBytes'>> {
  const client = createConnections(loaded.config, loaded.path).clickhouse(1_800_000);
  const name = qualifiedName(database, BENCH_TABLE);
  try {
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
    const [found] = await rows<{ n: string }>(client, `SELECT count() AS n FROM system.tables WHERE database = '${database}' AND name = '${BENCH_TABLE}'`);
    if (Number(found?.n) > 0) {
      const [counted] = await rows<{ n: string }>(client, `SELECT count() AS n FROM ${name}`);
      if (Number(counted?.n) === rowCount) return {};
    }
    const { ms } = await timed(async () => {
      await client.command({ query: `DROP TABLE IF EXISTS ${name}` });
      await client.command({
        query: `CREATE TABLE ${name} (event_date Date, event_time DateTime, user_id UInt64, event_type String, amount Float64)
                ENGINE = MergeTree() PARTITION BY toYYYYMM(event_date) ORDER BY (event_date, user_id)`,
      });
      await client.command({
        query: `INSERT INTO ${name} SELECT addMonths(toDate('2025-01-01'), number % 12) + (number % 28),
                  toDateTime('2025-01-01 00:00:00') + number, number % 100000,
                  arrayElement(['view','click','cart','purchase'], 1 + number % 4), (number % 10000) / 100
                FROM numbers(${rowCount})`,
      });
      await client.command({ query: `OPTIMIZE TABLE ${name} FINAL` });
    });
    return { generatedMs: ms };
  } finally {
    await client.close();
  }
}

/**
 * The raw export: for each partition, the very query the backup sends (`SELECT * ... WHERE
 * <partition> FORMAT Native`, compress=1: ClickHouse's own LZ4 blocks), POSTed over HTTP by curl
 * into /dev/null, as many partitions at once as the backup exports. Wall time in ms.
 */
export async function rawClickHouseExport(loaded: LoadedConfig, database: string): Promise<number> {
  const { config } = loaded;
  const client = createConnections(config, loaded.path).clickhouse();
  let queries: string[];
  try {
    const info = await readTable(client, await detectServer(client), database, BENCH_TABLE);
    queries = (await listPartitions(client, database, BENCH_TABLE)).map((p) => {
      const { where } = partitionSelection(info, p);
      return `SELECT * FROM ${qualifiedName(database, BENCH_TABLE)}${where ? ` WHERE ${where}` : ''} FORMAT Native`;
    });
  } finally {
    await client.close();
  }
  const auth = [`${config.clickhouse.user}:${config.clickhouse.password ? readSecret(config.clickhouse.password, loaded.path) : ''}`];
  const { ms } = await timed(() =>
    mapLimit(queries, RAW_EXPORT_CONCURRENCY, (query) =>
      run('curl', ['-sS', '--fail', '-o', '/dev/null', '-u', ...auth, '--data-binary', query, `${config.clickhouse.url}/?compress=1&query_id=ballast-bench-raw-${randomUUID()}`]),
    ),
  );
  return ms;
}
