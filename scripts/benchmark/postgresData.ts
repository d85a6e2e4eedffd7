/**
 * The bench's Postgres side: its databases (made once and kept between runs), and the raw tools
 * it is measured against, `pg_dump -Fc` and `pg_restore`.
 */
import { createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { findPgTool } from '../../activities/postgres/tools';
import type { LoadedConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';
import { run, timed } from './run';
import { PG_TEXT_RANDOM_BYTES, type BenchSize } from './sizes';

/** The incompressible table beside pgbench's: ~1 KiB of random base64 per row. */
const TEXT_TABLE = 'bench_documents';

async function withClient<T>(config: pg.ClientConfig, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function dropDatabase(loaded: LoadedConfig, name: string): Promise<void> {
  await withClient(createConnections(loaded.config, loaded.path).postgres(), (admin) =>
    admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`),
  );
}

async function createDatabase(loaded: LoadedConfig, name: string): Promise<void> {
  await withClient(createConnections(loaded.config, loaded.path).postgres(), (admin) =>
    admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE template0`),
  );
}

async function databaseExists(loaded: LoadedConfig, name: string): Promise<boolean> {
  return withClient(createConnections(loaded.config, loaded.path).postgres(), async (admin) => {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    return (found.rowCount ?? 0) > 0;
  });
}

/** Rows of a table, or undefined when it does not exist. */
async function tableRows(client: pg.Client, table: string): Promise<number | undefined> {
  const { rows } = await client.query<{ found: string | null }>('SELECT to_regclass($1) AS found', [table]);
  if (!rows[0]?.found) return undefined;
  const counted = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${pg.escapeIdentifier(table)}`);
  return Number(counted.rows[0]!.n);
}

export interface PreparedDatabase {
  /** Set when the data was (re)generated in this run. */
  generatedMs?: number;
  diskBytes: number;
}

/**
 * A size's database: pgbench's tables at its scale plus the incompressible text table. Kept when
 * it already holds exactly the expected rows, since generating the large one takes minutes.
 */
export async function preparePostgres(loaded: LoadedConfig, db: string, size: BenchSize): Promise<PreparedDatabase> {
  const c = createConnections(loaded.config, loaded.path).postgres(db);
  const expected = async () =>
    withClient(c, async (client) => {
      const accounts = await tableRows(client, 'pgbench_accounts');
      const documents = await tableRows(client, TEXT_TABLE);
      return accounts === size.pgbenchScale * 100_000 && documents === size.pgTextRows;
    });
  const diskBytes = () =>
    withClient(c, async (client) => Number((await client.query<{ size: string }>('SELECT pg_database_size(current_database()) AS size')).rows[0]!.size));
  if ((await databaseExists(loaded, db)) && (await expected())) return { diskBytes: await diskBytes() };

  const { ms } = await timed(async () => {
    await dropDatabase(loaded, db);
    await createDatabase(loaded, db);
    const pgbench = path.join(path.dirname((await findPgTool('pg_dump', 1)).path), 'pgbench');
    await run(pgbench, ['-i', '-q', '-s', String(size.pgbenchScale), '-h', c.host, '-p', String(c.port), '-U', c.user, db], {
      ...process.env,
      PGPASSWORD: c.password ?? '',
    });
    await withClient(c, async (client) => {
      // pgcrypto is a trusted extension (Postgres 13+): the database's owner may create it.
      await client.query('CREATE EXTENSION IF NOT EXISTS pgcrypto');
      await client.query(`CREATE TABLE ${TEXT_TABLE} (id bigint PRIMARY KEY, body text NOT NULL)`);
      await client.query(
        `INSERT INTO ${TEXT_TABLE} SELECT i, encode(gen_random_bytes(${PG_TEXT_RANDOM_BYTES}), 'base64') FROM generate_series(1, $1::bigint) AS i`,
        [size.pgTextRows],
      );
      // Hint bits and statistics set now, so the first dump of the run does not pay for them.
      await client.query(`VACUUM (ANALYZE) ${TEXT_TABLE}`);
    });
    if (!(await expected())) throw new Error(`${db}: generated, but the row counts are not the expected ones`);
  });
  return { generatedMs: ms, diskBytes: await diskBytes() };
}

/** An almost empty database, for the fixed cost of a Postgres backup run. */
export async function prepareTinyDatabase(loaded: LoadedConfig, db: string): Promise<void> {
  if (await databaseExists(loaded, db)) return;
  await createDatabase(loaded, db);
  await withClient(createConnections(loaded.config, loaded.path).postgres(db), async (client) => {
    await client.query('CREATE TABLE tiny (id int PRIMARY KEY, note text)');
    await client.query("INSERT INTO tiny SELECT i, 'row ' || i FROM generate_series(1, 100) AS i");
  });
}

/**
 * `pg_dump -Fc` to a local file, the way an operator takes a dump by hand: like the backup, it
 * writes every byte somewhere durable (the backup writes to the object store). The same pg_dump
 * the worker picks (the newest installed). Returns the wall time in ms.
 */
export async function rawPgDump(loaded: LoadedConfig, db: string): Promise<number> {
  const c = createConnections(loaded.config, loaded.path).postgres(db);
  const pgDump = await findPgTool('pg_dump', 15);
  const file = path.join(tmpdir(), `ballast-bench-${db}.dump`);
  try {
    const { ms } = await timed(() =>
      run(pgDump.path, ['-Fc', '-f', file, '-h', c.host, '-p', String(c.port), '-U', c.user, db], { ...process.env, PGPASSWORD: c.password ?? '' }),
    );
    return ms;
  } finally {
    rmSync(file, { force: true });
  }
}

/** Plain pg_restore of a backed-up dump, copied to a local file first, into a fresh database. */
export async function rawPgRestore(loaded: LoadedConfig, dumpKey: string, target: string): Promise<number> {
  const connections = createConnections(loaded.config, loaded.path);
  const file = path.join(tmpdir(), `ballast-bench-restore-${target}.dump`);
  const s3 = connections.s3(600_000);
  try {
    try {
      const object = await s3.send(new GetObjectCommand({ Bucket: loaded.config.objectStore.backupBucket, Key: dumpKey }));
      await pipeline(object.Body as NodeJS.ReadableStream, createWriteStream(file));
    } finally {
      s3.destroy();
    }
    await dropDatabase(loaded, target);
    await createDatabase(loaded, target);
    const c = connections.postgres(target);
    const pgRestore = await findPgTool('pg_restore', 15);
    const { ms } = await timed(() =>
      run(pgRestore.path, ['--exit-on-error', '-h', c.host, '-p', String(c.port), '-U', c.user, '-d', target, file], { ...process.env, PGPASSWORD: c.password ?? '' }),
    );
    return ms;
  } finally {
    rmSync(file, { force: true });
    await dropDatabase(loaded, target);
  }
}
