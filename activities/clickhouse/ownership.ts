import type { ClickHouseClient } from '@clickhouse/client';
import { quoteIdentifier, quoteString } from './sql';

/**
 * A ClickHouse database a drill or a restore beside production creates holds a one-row marker
 * table naming its owner (the restore run). ClickHouse 18.16 has no database comments, and a
 * TinyLog table works on every release. Teardown drops only a database whose marker names it;
 * a plan refuses an existing database whose marker names anyone else.
 */
export const OWNER_TABLE = '__ballast_owner';

export async function markDatabaseOwner(ch: ClickHouseClient, database: string, owner: string): Promise<void> {
  const table = `${quoteIdentifier(database)}.${quoteIdentifier(OWNER_TABLE)}`;
  await ch.command({ query: `CREATE TABLE IF NOT EXISTS ${table} (owner String) ENGINE = TinyLog` });
  // Concurrent table restores into one database may each mark it: every row names the same owner.
  if (!(await databaseOwners(ch, database)).includes(owner)) {
    await ch.command({ query: `INSERT INTO ${table} (owner) VALUES (${quoteString(owner)})` });
  }
}

/** The owners a database's marker names; empty when it has no marker (no one's). */
export async function databaseOwners(ch: ClickHouseClient, database: string): Promise<string[]> {
  const exists = await (
    await ch.query({ query: `SELECT count() AS n FROM system.tables WHERE database = ${quoteString(database)} AND name = ${quoteString(OWNER_TABLE)}`, format: 'JSONEachRow' })
  ).json<{ n: string | number }>();
  if (Number(exists[0]?.n ?? 0) === 0) return [];
  const rows = await (await ch.query({ query: `SELECT owner FROM ${quoteIdentifier(database)}.${quoteIdentifier(OWNER_TABLE)}`, format: 'JSONEachRow' })).json<{ owner: string }>();
  return [...new Set(rows.map((r) => r.owner))];
}

/** Whether the database is `owner`'s alone: marked by it and by no one else. */
export async function isDatabaseOwnedBy(ch: ClickHouseClient, database: string, owner: string): Promise<boolean> {
  const owners = await databaseOwners(ch, database);
  return owners.length === 1 && owners[0] === owner;
}
