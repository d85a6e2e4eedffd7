import pg from 'pg';

/** Exact row count of every user table, in the caller's transaction snapshot. */
export async function tableRowCounts(client: pg.Client): Promise<Record<string, number>> {
  const { rows: tables } = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
     ORDER BY 1, 2`,
  );
  const counts: Record<string, number> = {};
  for (const t of tables) {
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY ${qualified(t.schema, t.name)}`);
    counts[`${t.schema}.${t.name}`] = Number(rows[0]!.n);
  }
  return counts;
}

/**
 * An order-independent content checksum per table ("schema.table" names): the sum of a 64-bit
 * hash of each row's text form. Equal data gives equal sums whatever the physical row order, so
 * a restored table can be compared with the one that was dumped.
 */
export async function tableChecksums(client: pg.Client, tables: string[]): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  for (const table of tables) {
    const dot = table.indexOf('.');
    const name = qualified(table.slice(0, dot), table.slice(dot + 1));
    const { rows } = await client.query<{ sum: string | null }>(`SELECT coalesce(sum(hashtextextended(t::text, 0)), 0)::text AS sum FROM ONLY ${name} AS t`);
    sums[table] = rows[0]!.sum ?? '0';
  }
  return sums;
}

function qualified(schema: string, name: string): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(name)}`;
}
