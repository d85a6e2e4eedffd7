import type { ClickHouseClient } from '@clickhouse/client';
import type { TableFigures } from '../../contracts/demoResetTypes';
import { OWNER_TABLE } from './ownership';
import { qualifiedName, quoteIdentifier, quoteString } from './sql';
import { rows } from './tableInfo';

/**
 * A demo ClickHouse database holds a one-row marker table (ClickHouse 18.16 has no database
 * comments). Written by the demo-marker command; a demo reset refuses a database without it and
 * never truncates it. Unlike the TinyLog ownership marker of scratch databases, it is a MergeTree
 * table: a backup of every table in the database takes it along, and a restore accepts only
 * MergeTree-family schemas.
 */
export const DEMO_MARKER_TABLE = '__ballast_demo';
const MARKER_TEXT = 'ballast demo environment: a demo reset may wipe this database';

export async function markDemoDatabase(ch: ClickHouseClient, database: string): Promise<void> {
  const table = qualifiedName(database, DEMO_MARKER_TABLE);
  await ch.command({ query: `CREATE TABLE IF NOT EXISTS ${table} (marker String) ENGINE = MergeTree ORDER BY tuple()` });
  if (!(await hasDemoMarker(ch, database))) {
    await ch.command({ query: `INSERT INTO ${table} (marker) VALUES (${quoteString(MARKER_TEXT)})` });
  }
}

export async function hasDemoMarker(ch: ClickHouseClient, database: string): Promise<boolean> {
  const exists = await rows<{ n: string | number }>(ch, `SELECT count() AS n FROM system.tables WHERE database = ${quoteString(database)} AND name = ${quoteString(DEMO_MARKER_TABLE)}`);
  if (Number(exists[0]?.n ?? 0) === 0) return false;
  const marked = await rows<{ n: string | number }>(ch, `SELECT count() AS n FROM ${qualifiedName(database, DEMO_MARKER_TABLE)} WHERE marker = ${quoteString(MARKER_TEXT)}`);
  return Number(marked[0]?.n ?? 0) > 0;
}

/**
 * The tables a demo reset empties in `database`: the configured ones (empty: every table), never
 * the markers, never views (a view holds no data of its own; a materialized view's target table
 * is listed itself). Each with its row count.
 */
export async function demoTableFigures(ch: ClickHouseClient, database: string, configured: string[]): Promise<TableFigures[]> {
  const listed = await rows<{ name: string; engine: string }>(ch, `SELECT name, engine FROM system.tables WHERE database = ${quoteString(database)} ORDER BY name`);
  const tables = listed
    .filter((t) => t.name !== DEMO_MARKER_TABLE && t.name !== OWNER_TABLE && !/View$/.test(t.engine) && t.engine !== 'Dictionary')
    .filter((t) => configured.length === 0 || configured.includes(t.name))
    .map((t) => t.name);
  const figures: TableFigures[] = [];
  for (const table of tables) {
    const counted = await rows<{ n: string | number }>(ch, `SELECT count() AS n FROM ${qualifiedName(database, table)}`);
    figures.push({ table, rows: Number(counted[0]?.n ?? 0) });
  }
  return figures;
}

/**
 * TRUNCATE TABLE keeps the table and its current schema and drops its data; ClickHouse 18.16
 * knows it, as current releases do. Truncating an empty table again is harmless.
 */
export async function truncateDemoTable(ch: ClickHouseClient, database: string, table: string): Promise<void> {
  await ch.command({ query: `TRUNCATE TABLE ${quoteIdentifier(database)}.${quoteIdentifier(table)}` });
}
