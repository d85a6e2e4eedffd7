import { createHash, randomUUID } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { BackupPiece } from '../../contracts/backupTypes';
import type { RestoreStepResult, VerifyCheck, VerifyResult } from '../../contracts/restoreTypes';
import { backupPrefix } from '../storage/backupObjects';
import { isMergeTreeFamily, qualifiedName, quoteIdentifier, quoteString, validateName } from './sql';
import type { ActivityDeps } from '../deps';
import { keepHeartbeating, throttledHeartbeat } from '../common/heartbeat';
import { Failure } from '../../contracts/failures';

export interface ClickHouseRestoreRequest {
  backupId: string;
  /** The database the table was backed up from (the pieces are named after it). */
  database: string;
  table: string;
  /** Where the table is restored: the same database, or a scratch one (drills). */
  targetDatabase: string;
  /** The table's pieces from the manifest: its schema piece and one piece per partition. */
  pieces: BackupPiece[];
}

export interface ClickHouseVerifyRequest {
  database: string;
  table: string;
  targetDatabase: string;
  pieces: BackupPiece[];
}

export interface ClickHouseDropDatabaseRequest {
  database: string;
}

/** Heartbeat details: progress for the UI, and where a retried attempt picks up. */
export interface ClickHouseRestoreProgress {
  partitionsDone: number;
  partitionsTotal?: number;
  /** Object bytes read: complete partitions plus the one loading. */
  bytes: number;
  /** Partition ids whose objects were loaded completely, in load order. */
  done: string[];
}

/** Databases no restore or teardown may touch, whatever the config says. */
const RESERVED_DATABASES = ['system', 'default', 'information_schema', 'INFORMATION_SCHEMA'];

/** A schema.sql larger than this is not a SHOW CREATE TABLE text. */
const MAX_SCHEMA_BYTES = 16 * 1024 * 1024;

/** One partition piece, checked. */
interface PartitionPiece {
  piece: BackupPiece;
  partitionId: string;
  rows: number;
}

/** The table's pieces, checked against the request. */
interface TablePieces {
  schema: BackupPiece;
  partitions: PartitionPiece[];
  /** False for tables whose engine is not of the MergeTree family: schema only. */
  dataExported: boolean;
  engine: string;
}

function invalid(activity: string, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${activity}: ${message}`, Failure.InvalidInput);
}

/**
 * Checks names and pieces before anything is read or changed; throws plain Errors naming the field
 * (callers turn them into non-retryable InvalidInput failures).
 */
function checkTablePieces(database: string, table: string, pieces: unknown): TablePieces {
  if (!Array.isArray(pieces)) throw new Error('pieces must be an array of manifest pieces');
  const prefix = `${database}.${table}/`;
  let schema: BackupPiece | undefined;
  const partitions: PartitionPiece[] = [];
  const seen = new Set<string>();
  pieces.forEach((raw: unknown, i) => {
    const piece = raw as Partial<BackupPiece> | null;
    if (!piece || typeof piece !== 'object') throw new Error(`pieces[${i}] is not a manifest piece`);
    if (piece.component !== 'clickhouse') throw new Error(`pieces[${i}] (${String(piece.name)}) is not a clickhouse piece`);
    if (typeof piece.name !== 'string' || !piece.name.startsWith(prefix)) {
      throw new Error(`pieces[${i}] (${JSON.stringify(piece.name)}) does not belong to ${database}.${table}`);
    }
    if (typeof piece.key !== 'string' || piece.key === '') throw new Error(`pieces[${i}] (${piece.name}) has no object key`);
    if (typeof piece.size !== 'number' || !Number.isSafeInteger(piece.size) || piece.size < 0) {
      throw new Error(`pieces[${i}] (${piece.name}) has no valid size`);
    }
    const part = piece.name.slice(prefix.length);
    if (part === 'schema') {
      if (schema) throw new Error(`pieces: more than one schema piece for ${database}.${table}`);
      schema = piece as BackupPiece;
      return;
    }
    const partitionId = piece.details?.partitionId;
    if (typeof partitionId !== 'string' || partitionId !== part) {
      throw new Error(`pieces[${i}] (${piece.name}): details.partitionId ${JSON.stringify(partitionId)} does not match its name`);
    }
    if (typeof piece.rows !== 'number' || !Number.isSafeInteger(piece.rows) || piece.rows < 0) {
      throw new Error(`pieces[${i}] (${piece.name}) has no valid row count`);
    }
    if (seen.has(partitionId)) throw new Error(`pieces: partition ${partitionId} of ${database}.${table} is listed twice`);
    seen.add(partitionId);
    partitions.push({ piece: piece as BackupPiece, partitionId, rows: piece.rows });
  });
  if (!schema) throw new Error(`pieces: no schema piece (${prefix}schema) for ${database}.${table}`);
  const dataExported = schema.details?.dataExported !== false;
  if (!dataExported && partitions.length > 0) {
    throw new Error(`pieces: ${database}.${table} was backed up as schema only, yet ${partitions.length} partition piece(s) are listed`);
  }
  const engine = typeof schema.details?.engine === 'string' ? schema.details.engine : '';
  return { schema, partitions, dataExported, engine };
}

/** Names for restore targets: valid, and never a system database. */
function checkTargetDatabase(name: unknown): string {
  validateName(name, 'targetDatabase');
  if (RESERVED_DATABASES.includes(name as string)) throw new Error(`targetDatabase ${JSON.stringify(name)} is a system database`);
  return name as string;
}

// ---------------------------------------------------------------------------------------------
// The saved CREATE statement, renamed into the target database.

const CREATE_KINDS = /^\s*CREATE\s+(TABLE|VIEW|MATERIALIZED\s+VIEW|LIVE\s+VIEW|WINDOW\s+VIEW|DICTIONARY)\s+(?:IF\s+NOT\s+EXISTS\s+)?/i;
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b', f: '\f', a: '\x07', v: '\v' };

/** Reads one identifier (bare, `back-quoted` or "double-quoted") at `at`: its name and where it ends. */
function readIdentifier(text: string, at: number): { name: string; end: number } | undefined {
  const quote = text[at];
  if (quote === '`' || quote === '"') {
    let name = '';
    let i = at + 1;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '\\') {
        const next = text[i + 1];
        if (next === undefined) return undefined;
        name += ESCAPES[next] ?? next;
        i += 2;
      } else if (c === quote) {
        if (text[i + 1] === quote) {
          name += quote;
          i += 2;
        } else {
          return { name, end: i + 1 };
        }
      } else {
        name += c;
        i++;
      }
    }
    return undefined;
  }
  const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(at));
  return m ? { name: m[0], end: at + m[0].length } : undefined;
}

export interface RenamedStatement {
  /** TABLE, VIEW, MATERIALIZED VIEW, ... as written. */
  kind: string;
  statement: string;
}

/**
 * Rewrites `CREATE <kind> <db>.<table> ...` (names bare or quoted, as SHOW CREATE TABLE prints them
 * on 18.16 and current releases) into `CREATE <kind> `target`.`table` ...`; throws when the
 * statement does not start with exactly that name.
 */
export function renameCreateStatement(statement: string, database: string, table: string, target: string): RenamedStatement {
  const head = CREATE_KINDS.exec(statement);
  const fail = (why: string): never => {
    throw new Error(
      `the saved schema of ${database}.${table} ${why}; it starts ${JSON.stringify(statement.slice(0, 120))}, expected CREATE TABLE ${database}.${table}`,
    );
  };
  if (!head) return fail('is not a CREATE TABLE/VIEW statement');
  const db = readIdentifier(statement, head[0].length);
  if (!db || statement[db.end] !== '.') return fail('does not name its database');
  const name = readIdentifier(statement, db.end + 1);
  if (!name) return fail('does not name its table');
  if (db.name !== database || name.name !== table) return fail(`names ${db.name}.${name.name}`);
  const rest = statement.slice(name.end);
  if (rest !== '' && !/^[\s(]/.test(rest)) return fail('has unexpected text after the table name');
  const kind = head[1]!.replace(/\s+/g, ' ').toUpperCase();
  return { kind, statement: `CREATE ${kind} ${qualifiedName(target, table)}${rest}` };
}

/** Whether SQL text names `database` as a qualifier (`db.x`, `` `db`.x `` or `"db".x`). */
function mentionsDatabase(sql: string, database: string): boolean {
  const bare = /^[A-Za-z_][A-Za-z0-9_]*$/.test(database);
  const forms = [`${quoteIdentifier(database)}.`, `"${database}".`];
  if (bare) forms.push(`${database}.`);
  return forms.some((form) => {
    for (let at = sql.indexOf(form); at >= 0; at = sql.indexOf(form, at + 1)) {
      if (!bare || at === 0 || !/[A-Za-z0-9_]/.test(sql[at - 1]!)) return true;
    }
    return false;
  });
}

// ---------------------------------------------------------------------------------------------

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  const result = await client.query({ query, format: 'JSONEachRow' });
  return result.json<T>();
}

/** Active rows per partition id of a table (system.parts); empty when the table does not exist. */
async function activeRows(client: ClickHouseClient, database: string, table: string): Promise<Map<string, number>> {
  const found = await rows<{ partition_id: string; rows: string | number }>(
    client,
    `SELECT partition_id, sum(rows) AS rows FROM system.parts
     WHERE database = ${quoteString(database)} AND table = ${quoteString(table)} AND active
     GROUP BY partition_id`,
  );
  return new Map(found.map((p) => [p.partition_id, Number(p.rows)]));
}

/** The table's engine, or undefined when it does not exist. */
async function tableEngine(client: ClickHouseClient, database: string, table: string): Promise<string | undefined> {
  const [row] = await rows<{ engine: string }>(
    client,
    `SELECT engine FROM system.tables WHERE database = ${quoteString(database)} AND name = ${quoteString(table)}`,
  );
  return row?.engine;
}

function readProgress(details: unknown): ClickHouseRestoreProgress | undefined {
  const d = details as Partial<ClickHouseRestoreProgress> | undefined;
  if (!d || typeof d !== 'object' || typeof d.partitionsDone !== 'number' || typeof d.bytes !== 'number') return undefined;
  if (!Array.isArray(d.done) || !d.done.every((id) => typeof id === 'string')) return undefined;
  return d as ClickHouseRestoreProgress;
}

/** Reads a small object whole (schema.sql only). */
async function readSmallObject(s3: S3Client, bucket: string, piece: BackupPiece, signal: AbortSignal): Promise<Buffer> {
  if (piece.size > MAX_SCHEMA_BYTES) throw new Error(`${piece.key}: ${piece.size} bytes is too large for a schema`);
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: piece.key }), { abortSignal: signal });
  const bytes = Buffer.from(await object.Body!.transformToByteArray());
  if (bytes.length !== piece.size) throw corrupt(`${piece.key} holds ${bytes.length} bytes, the manifest says ${piece.size}`);
  if (piece.sha256 && createHash('sha256').update(bytes).digest('hex') !== piece.sha256) {
    throw corrupt(`${piece.key} does not match the sha256 the manifest records`);
  }
  return bytes;
}

function corrupt(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`backup object damaged: ${message}`, Failure.BackupCorrupt);
}

/** Counts and hashes the bytes passing through. */
class Counter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly onBytes: (bytes: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes(this.bytes);
    done(null, chunk);
  }
}

export function createClickHouseRestoreActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    /**
     * Restores one ClickHouse table from its backup pieces into `targetDatabase`: recreates the
     * database if needed, drops the table there, creates it from the saved schema (renamed into the
     * target) and loads each partition object, streamed from the backup bucket straight into
     * `INSERT INTO ... FORMAT Native` with `decompress=1`. A retried attempt continues after the
     * partitions its heartbeat details list as done when the table holds exactly those; anything
     * else starts over, so no partition is ever loaded twice.
     */
    async restoreClickHouseTable(req: ClickHouseRestoreRequest): Promise<RestoreStepResult> {
      const started = Date.now();
      let checked: TablePieces;
      try {
        if (!req || typeof req !== 'object') throw new Error('request must be an object');
        backupPrefix(req.backupId);
        validateName(req.database, 'database');
        validateName(req.table, 'table');
        checkTargetDatabase(req.targetDatabase);
        checked = checkTablePieces(req.database, req.table, req.pieces);
      } catch (err) {
        throw invalid('restoreClickHouseTable', (err as Error).message);
      }
      const { database, table, targetDatabase } = req;
      const { schema, partitions, dataExported, engine } = checked;
      if (/^Replicated/.test(engine) && targetDatabase !== database) {
        // Its saved ZooKeeper path is the production table's: a copy beside it would join
        // production's replicas and write the restored rows into production.
        throw invalid(
          'restoreClickHouseTable',
          `${database}.${table} is ${engine}: restoring it into another database (targetDatabase ${targetDatabase}) would make it a replica of the original table`,
        );
      }

      const ctx = Context.current();
      const unit = `clickhouse ${targetDatabase}.${table}`;
      const target = qualifiedName(targetDatabase, table);
      const notes: string[] = [];
      const ch = connections.clickhouse();
      const s3 = connections.s3(300_000);
      const totalRows = partitions.reduce((n, p) => n + p.rows, 0);
      const progress: ClickHouseRestoreProgress = { partitionsDone: 0, partitionsTotal: partitions.length, bytes: 0, done: [] };
      let inFlight = 0;
      const current = () => ({ ...progress, done: [...progress.done], bytes: progress.bytes + inFlight });
      const beat = throttledHeartbeat(current);
      const stopBeating = keepHeartbeating(current);
      let mergesStopped = false;
      try {
        // Everything that can be checked without changing anything, first: the schema object and
        // its name.
        const statement = (await readSmallObject(s3, bucket, schema, ctx.cancellationSignal)).toString('utf8');
        let renamed: RenamedStatement;
        try {
          renamed = renameCreateStatement(statement, database, table, targetDatabase);
        } catch (err) {
          throw ApplicationFailure.nonRetryable(`restoreClickHouseTable: ${(err as Error).message}`, Failure.UnexpectedSchema);
        }
        if (dataExported && !/TABLE/.test(renamed.kind)) {
          throw ApplicationFailure.nonRetryable(
            `restoreClickHouseTable: ${database}.${table} has data pieces but its schema creates a ${renamed.kind}`,
            Failure.UnexpectedSchema,
          );
        }

        // A retried attempt: continue only when the table holds exactly what the details say.
        const earlier = ctx.info.attempt > 1 ? readProgress(ctx.info.heartbeatDetails) : undefined;
        let resumeFrom: Set<string> | undefined;
        const existingEngine = await tableEngine(ch, targetDatabase, table);
        const existing = existingEngine === undefined ? new Map<string, number>() : await activeRows(ch, targetDatabase, table);
        const existingRows = [...existing.values()].reduce((a, b) => a + b, 0);
        if (earlier && existingEngine !== undefined) {
          const expected = new Map(partitions.map((p) => [p.partitionId, p.rows]));
          const done = new Set(earlier.done);
          const matches =
            dataExported &&
            (engine === '' || existingEngine === engine) &&
            earlier.done.every((id) => expected.has(id) && (existing.get(id) ?? 0) === expected.get(id)) &&
            [...existing].every(([id, n]) => n === 0 || done.has(id));
          if (matches) {
            resumeFrom = done;
            notes.push(`resumed: ${done.size} of ${partitions.length} partition(s) were loaded by an earlier attempt`);
          } else {
            notes.push(
              `started over: the table held ${existingRows} row(s) in ${existing.size} partition(s), not the ${earlier.done.length} partition(s) an earlier attempt reported loaded`,
            );
          }
        } else if (ctx.info.attempt > 1 && existingEngine !== undefined) {
          notes.push(`started over: an earlier attempt left no progress to resume from (the table held ${existingRows} row(s))`);
        } else if (existingEngine !== undefined) {
          notes.push(
            isMergeTreeFamily(existingEngine)
              ? `replaced an existing table with ${existingRows} rows`
              : `replaced an existing ${existingEngine} table`,
          );
        }

        if (!resumeFrom) {
          await ch.command({ query: `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(targetDatabase)}` });
          await ch.command({ query: `DROP TABLE IF EXISTS ${target}` });
          await ch.command({ query: renamed.statement });
        }
        if (targetDatabase !== database) {
          notes.push(`restored from ${database}.${table} into database ${targetDatabase}`);
          if (mentionsDatabase(renamed.statement.slice(`CREATE ${renamed.kind} ${target}`.length), database)) {
            notes.push(`its definition still refers to database ${database} (only its own name was rewritten)`);
          }
        }
        if (!dataExported) {
          notes.push(`engine ${engine || renamed.kind}: schema only`);
          return { component: 'clickhouse', unit, bytes: 0, rows: 0, durationMs: Date.now() - started, notes, ...(resumeFrom ? { resumed: true } : {}) };
        }

        // Merges paused while loading: engines that collapse rows (Replacing, Summing...) would
        // otherwise change the per-partition counts a retried attempt compares.
        mergesStopped = await ch
          .command({ query: `SYSTEM STOP MERGES ${target}` })
          .then(() => true)
          .catch(() => false);

        for (const p of partitions) {
          if (resumeFrom?.has(p.partitionId)) {
            progress.partitionsDone++;
            progress.bytes += p.piece.size;
            progress.done.push(p.partitionId);
          }
        }
        beat.now();
        for (const p of partitions) {
          if (resumeFrom?.has(p.partitionId)) continue;
          ctx.cancellationSignal.throwIfAborted();
          await loadPartition(ch, s3, p, (bytes) => {
            inFlight = bytes;
            beat();
          });
          inFlight = 0;
          progress.partitionsDone++;
          progress.bytes += p.piece.size;
          progress.done.push(p.partitionId);
          beat.now();
        }
        if (partitions.length === 0) notes.push('the backup holds no rows for this table');
        return {
          component: 'clickhouse',
          unit,
          bytes: progress.bytes,
          rows: totalRows,
          durationMs: Date.now() - started,
          notes,
          ...(resumeFrom ? { resumed: true } : {}),
        };
      } catch (err) {
        if (ctx.cancellationSignal.aborted && ctx.cancellationSignal.reason instanceof Error) throw ctx.cancellationSignal.reason;
        throw err;
      } finally {
        stopBeating();
        if (mergesStopped) await ch.command({ query: `SYSTEM START MERGES ${target}` }).catch(() => undefined);
        await ch.close().catch(() => undefined);
        s3.destroy();
      }

      /** Streams one partition object from the bucket into the table; never holds it whole. */
      async function loadPartition(
        client: ClickHouseClient,
        s3Client: S3Client,
        p: PartitionPiece,
        onBytes: (bytes: number) => void,
      ): Promise<void> {
        const object = await s3Client.send(new GetObjectCommand({ Bucket: bucket, Key: p.piece.key }), {
          abortSignal: ctx.cancellationSignal,
        });
        const body = object.Body as Readable | undefined;
        if (!body || typeof body.pipe !== 'function') throw new Error(`${p.piece.key}: the object store returned no stream`);
        if (object.ContentLength !== undefined && object.ContentLength !== p.piece.size) {
          body.destroy();
          throw corrupt(`${p.piece.key} holds ${object.ContentLength} bytes, the manifest says ${p.piece.size}`);
        }
        const counter = new Counter(onBytes);
        const queryId = `ballast-restore-${randomUUID()}`;
        const onCancel = () => {
          body.destroy(new Error(`restore of ${unit} cancelled`));
          void client.command({ query: `KILL QUERY WHERE query_id = ${quoteString(queryId)} ASYNC` }).catch(() => undefined);
        };
        if (ctx.cancellationSignal.aborted) onCancel();
        ctx.cancellationSignal.addEventListener('abort', onCancel);
        const reading = pipeline(body, counter);
        try {
          const insert = (async () => {
            const { stream } = await client.exec({
              query: `INSERT INTO ${target} FORMAT Native`,
              query_id: queryId,
              values: counter,
              // The object is ClickHouse's own compressed block format: the server decompresses
              // it (and checks each block's checksum). HTTP compression stays off.
              clickhouse_settings: { decompress: 1, enable_http_compression: 0 },
              abort_signal: ctx.cancellationSignal,
            });
            for await (const _ of stream as AsyncIterable<unknown>) {
              // the (empty) answer of an INSERT
            }
          })();
          const [inserted, read] = await Promise.allSettled([insert, reading]);
          if (read.status === 'rejected') throw read.reason;
          if (inserted.status === 'rejected') throw inserted.reason;
        } catch (err) {
          body.destroy();
          counter.destroy();
          throw err;
        } finally {
          ctx.cancellationSignal.removeEventListener('abort', onCancel);
        }
        ctx.cancellationSignal.throwIfAborted();
        if (counter.bytes !== p.piece.size) throw corrupt(`${p.piece.key}: read ${counter.bytes} bytes, the manifest says ${p.piece.size}`);
        const sha256 = counter.hash.digest('hex');
        if (p.piece.sha256 && sha256 !== p.piece.sha256) {
          throw corrupt(`${p.piece.key} does not match the sha256 the manifest records (partition ${p.partitionId} was loaded from it)`);
        }
      }
    },

    /**
     * Compares a restored table with its backup: per partition piece, its rows against the target's
     * active rows for that partition id (system.parts), and the table's count() against the sum.
     * Reports mismatches; does not throw for them.
     */
    async verifyClickHouseTable(req: ClickHouseVerifyRequest): Promise<VerifyResult> {
      let checked: TablePieces;
      try {
        if (!req || typeof req !== 'object') throw new Error('request must be an object');
        validateName(req.database, 'database');
        validateName(req.table, 'table');
        checkTargetDatabase(req.targetDatabase);
        checked = checkTablePieces(req.database, req.table, req.pieces);
      } catch (err) {
        throw invalid('verifyClickHouseTable', (err as Error).message);
      }
      const { table, targetDatabase } = req;
      const unit = `clickhouse ${targetDatabase}.${table}`;
      const checks: VerifyCheck[] = [];
      const check = (name: string, expected: string | number, actual: string | number) =>
        checks.push({ name: `${unit} ${name}`, expected, actual, ok: expected === actual });
      const ch = connections.clickhouse();
      try {
        const engine = await tableEngine(ch, targetDatabase, table);
        const expectedEngine = checked.engine || engine || 'a table';
        check('exists', expectedEngine, engine ?? 'missing');
        if (engine === undefined || !checked.dataExported) {
          return { component: 'clickhouse', unit, ok: checks.every((c) => c.ok), checks };
        }
        const active = await activeRows(ch, targetDatabase, table);
        for (const p of checked.partitions) check(`partition ${p.partitionId} rows`, p.rows, active.get(p.partitionId) ?? 0);
        const expectedIds = new Set(checked.partitions.map((p) => p.partitionId));
        const extra = [...active].filter(([id, n]) => n > 0 && !expectedIds.has(id)).map(([id]) => id).sort();
        check('partitions not in the backup', '', extra.join(', '));
        const [counted] = await rows<{ n: string | number }>(ch, `SELECT count() AS n FROM ${qualifiedName(targetDatabase, table)}`);
        check('rows', checked.partitions.reduce((n, p) => n + p.rows, 0), Number(counted?.n ?? 0));
        return { component: 'clickhouse', unit, ok: checks.every((c) => c.ok), checks };
      } finally {
        await ch.close().catch(() => undefined);
      }
    },

    /**
     * Drops a scratch database (DR-drill teardown). Refuses the configured production databases
     * and the server's own.
     */
    async dropClickHouseDatabase(req: ClickHouseDropDatabaseRequest): Promise<{ dropped: boolean }> {
      const database = req?.database;
      try {
        validateName(database, 'database');
      } catch (err) {
        throw invalid('dropClickHouseDatabase', (err as Error).message);
      }
      if (RESERVED_DATABASES.includes(database)) {
        throw invalid('dropClickHouseDatabase', `database ${JSON.stringify(database)} is a system database and is never dropped`);
      }
      if (config.clickhouse.databases.some((d) => d.name === database)) {
        throw invalid('dropClickHouseDatabase', `database ${JSON.stringify(database)} is a configured production database and is never dropped`);
      }
      const ch = connections.clickhouse();
      try {
        const [found] = await rows<{ name: string }>(ch, `SELECT name FROM system.databases WHERE name = ${quoteString(database)}`);
        if (!found) return { dropped: false };
        await ch.command({ query: `DROP DATABASE IF EXISTS ${quoteIdentifier(database)}` });
        return { dropped: true };
      } finally {
        await ch.close().catch(() => undefined);
      }
    },
  };
}
