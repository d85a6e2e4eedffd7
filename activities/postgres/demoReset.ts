import pg from 'pg';
import type { TableFigures } from '../../contracts/demoResetTypes';

/**
 * A demo database holds a one-row ballast table saying so, written by the demo-marker command
 * (scripts/markDemo.ts, and the seed on the local stack). A table, not a database comment: a
 * dump of the database carries it, and a demo reset never truncates it. A demo reset refuses a
 * database without it.
 */
export const DEMO_MARKER_TABLE = '__ballast_demo';
const MARKER_TEXT = 'ballast demo environment: a demo reset may wipe this database';
const marker = `public.${pg.escapeIdentifier(DEMO_MARKER_TABLE)}`;

export async function markDemoDatabase(client: pg.Client): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS ${marker} (marker text NOT NULL, marked_at timestamptz NOT NULL DEFAULT now())`);
  await client.query(`INSERT INTO ${marker} (marker) SELECT $1::text WHERE NOT EXISTS (SELECT 1 FROM ${marker} WHERE marker = $1::text)`, [MARKER_TEXT]);
}

export async function hasDemoMarker(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS found`,
    [marker],
  );
  if (!rows[0]?.found) return false;
  const marked = await client.query(`SELECT 1 FROM ${marker} WHERE marker = $1 LIMIT 1`, [MARKER_TEXT]);
  return (marked.rowCount ?? 0) > 0;
}

/** Every user table but the marker, as "schema.table", with its exact row count. */
export async function demoTableFigures(client: pg.Client): Promise<TableFigures[]> {
  const { rows: tables } = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
       AND NOT (n.nspname = 'public' AND c.relname = $1)
     ORDER BY 1, 2`,
    [DEMO_MARKER_TABLE],
  );
  const figures: TableFigures[] = [];
  for (const t of tables) {
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${qualified(t.schema, t.name)}`);
    figures.push({ table: `${t.schema}.${t.name}`, rows: Number(rows[0]!.n) });
  }
  return figures;
}

/**
 * TRUNCATE ... RESTART IDENTITY CASCADE of the given tables in one transaction: all of them or
 * none. lock_timeout bounds the wait for a busy table's lock (the step fails and is retried
 * rather than queueing every other session behind it). Running it again is harmless.
 */
export async function truncateDemoTables(client: pg.Client, tables: string[], lockTimeoutMs: number): Promise<void> {
  if (tables.length === 0) return;
  const names = tables.map((t) => {
    const dot = t.indexOf('.');
    return qualified(t.slice(0, dot), t.slice(dot + 1));
  });
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    await client.query(`TRUNCATE TABLE ${names.join(', ')} RESTART IDENTITY CASCADE`);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

function qualified(schema: string, name: string): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(name)}`;
}
