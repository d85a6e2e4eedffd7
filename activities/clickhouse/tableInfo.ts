/**
 * What a backup reads about a table before exporting it: the server's capabilities, the table's
 * engine and partition key, and its SHOW CREATE TABLE text.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { ApplicationFailure } from '@temporalio/common';
import { Failure } from '../../contracts/failures';
import { isMergeTreeFamily, partitionExpression, qualifiedName, quoteString } from './sql';

/** What the server at hand can do; decided once per activity. */
export interface ServerCapabilities {
  version: string;
  /**
   * system.tables.partition_key: current releases and the stack's 18.16.1 have it; older servers
   * do not, and the key is then parsed from engine_full.
   */
  partitionKeyColumn: boolean;
  /** system.tables.create_table_query: not guaranteed on old servers. */
  createTableQueryColumn: boolean;
}

export interface TableInfo {
  engine: string;
  engineFull: string;
  createTableQuery: string;
  /** The PARTITION BY expression, '' when unpartitioned or not MergeTree. */
  partitionKey: string;
  /**
   * Whether `_partition_id` can be selected: current releases (probed, not guessed from the
   * version); 18.16 has no such virtual column and selects by the partition expression instead.
   */
  partitionIdColumn: boolean;
}

export async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  const result = await client.query({ query, format: 'JSONEachRow' });
  return result.json<T>();
}

/** The server's version and which system.tables columns it has. */
export async function detectServer(client: ClickHouseClient): Promise<ServerCapabilities> {
  const [version] = await rows<{ version: string }>(client, 'SELECT version() AS version');
  const columns = new Set(
    (await rows<{ name: string }>(client, "SELECT name FROM system.columns WHERE database = 'system' AND table = 'tables'")).map(
      (c) => c.name,
    ),
  );
  return {
    version: version?.version ?? 'unknown',
    partitionKeyColumn: columns.has('partition_key'),
    createTableQueryColumn: columns.has('create_table_query'),
  };
}

/** The table's engine and partition key; fails non-retryably when the table does not exist. */
export async function readTable(
  client: ClickHouseClient,
  server: ServerCapabilities,
  database: string,
  table: string,
): Promise<TableInfo> {
  const columns = [
    'engine',
    'engine_full',
    server.createTableQueryColumn ? 'create_table_query' : "'' AS create_table_query",
    // The server's own partition key text where it has the column (current releases, 18.16.1);
    // parsed from engine_full below on servers without it.
    server.partitionKeyColumn ? 'partition_key' : "'' AS partition_key",
  ];
  const [row] = await rows<{ engine: string; engine_full: string; create_table_query: string; partition_key: string }>(
    client,
    `SELECT ${columns.join(', ')} FROM system.tables WHERE database = ${quoteString(database)} AND name = ${quoteString(table)}`,
  );
  if (!row) throw ApplicationFailure.nonRetryable(`clickhouse table ${database}.${table} does not exist`, Failure.TableNotFound);
  const mergeTree = isMergeTreeFamily(row.engine);
  let partitionKey = '';
  if (mergeTree) {
    partitionKey = server.partitionKeyColumn
      ? row.partition_key
      : partitionExpression(row.engine, row.engine_full || row.create_table_query || (await showCreateTable(client, qualifiedName(database, table))));
  }
  return {
    engine: row.engine,
    engineFull: row.engine_full,
    createTableQuery: row.create_table_query,
    partitionKey,
    partitionIdColumn: mergeTree && (await hasPartitionIdColumn(client, qualifiedName(database, table))),
  };
}

/**
 * Whether the `_partition_id` virtual column exists: current releases have it, 18.16 answers
 * "Unknown identifier" (code 47). Probed rather than guessed from the version number.
 */
async function hasPartitionIdColumn(client: ClickHouseClient, name: string): Promise<boolean> {
  try {
    await rows(client, `SELECT _partition_id FROM ${name} LIMIT 0`);
    return true;
  } catch (err) {
    const code = String((err as { code?: unknown }).code ?? '');
    if (code === '47' || /Unknown identifier|Missing columns/i.test((err as Error).message)) return false;
    throw err;
  }
}

export async function showCreateTable(client: ClickHouseClient, name: string): Promise<string> {
  const [row] = await rows<{ statement: string }>(client, `SHOW CREATE TABLE ${name}`);
  if (!row?.statement) throw new Error(`SHOW CREATE TABLE ${name} returned nothing`);
  return row.statement;
}
