/**
 * The reseed of a demo from a golden backup. Nothing here loads data: the restore does, with its
 * own plan (activities/restore/plan.ts: the manifest's signature, completeness and every object's
 * sha256) and its own steps, into the demo's own names. What is demo-specific: the golden backup
 * must cover everything the reset wipes, its figures are what the demo must equal afterwards, and
 * the wiped copies a restore keeps aside are dropped, being empty.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/activity';
import pg from 'pg';
import type { Component } from '../../contracts/backupTypes';
import { mapLimit } from '../../contracts/concurrency';
import type { DemoFigures, GoldenFigures, GoldenReseed, ReseedField } from '../../contracts/demoResetTypes';
import { Failure } from '../../contracts/failures';
import type { PlannedTaskRequest, RestoreTask, RestoreTaskHandle, VerifyCheck, VerifyResult } from '../../contracts/restoreTypes';
import { DEMO_MARKER_TABLE as CH_MARKER } from '../clickhouse/demoReset';
import { sideNames } from '../clickhouse/sideTables';
import { qualifiedName, quoteString } from '../clickhouse/sql';
import { rows as chRows } from '../clickhouse/tableInfo';
import { throttledHeartbeat } from '../common/heartbeat';
import type { ActivityDeps } from '../deps';
import type { BucketListing } from '../objectStore/backup';
import { DEMO_MARKER_TABLE as PG_MARKER, demoTableFigures, hasDemoMarker } from '../postgres/demoReset';
import { asideName } from '../postgres/restore';
import { createRestorePlanActivities, kafkaTopicOf, runOf } from '../restore/plan';
import { approvedTask, readApprovedPlan } from '../restore/storedPlan';
import { getPieceJson, headObject, objectSha256 } from '../storage/backupObjects';

const PG_MARKER_NAME = `public.${PG_MARKER}`;

export interface GoldenPlanRequest {
  backupId: string;
  field: ReseedField;
  /** The components the reset wipes (kept ones are not reseeded). */
  components: Component[];
  /** What the wipe acts on: the golden backup must cover each of it. */
  figures: DemoFigures;
}

/**
 * The restore's plan of the golden backup into the demo's own names, checked for what a demo
 * reset needs besides: signed, holding every component the reset wipes, and every database,
 * table, topic and bucket it wipes; a Postgres dump carrying the demo marker (the restore replaces
 * the whole database with it). Refusals name `field`.
 */
export async function planGoldenReseed(deps: ActivityDeps, request: GoldenPlanRequest): Promise<GoldenReseed> {
  const { backupId, field, components, figures } = request;
  const refuse = (why: string, type: string = Failure.InvalidInput) => ApplicationFailure.nonRetryable(`${field}: golden backup ${backupId}: ${why}; nothing was touched`, type);
  let planned;
  try {
    planned = await createRestorePlanActivities(deps).planRestore({
      restoreId: runOf('planDemoReset')[0],
      backupId,
      components,
      verifyChecksums: true,
      allowUnsignedBackup: false,
      ...(figures.kafka ? { kafkaTopics: figures.kafka.topics.map((t) => t.topic) } : {}),
    });
  } catch (err) {
    if (err instanceof ApplicationFailure) throw refuse(err.message.replace(/^input\.(backupId|components): /, ''), err.type ?? Failure.InvalidInput);
    throw err;
  }
  if (!planned.manifestKeyId) throw refuse('its manifest is unsigned: a golden backup must be signed by the worker\'s key', Failure.BackupNotAuthentic);
  const lacking = planned.backupLacks.filter((l) => components.includes(l.component));
  if (lacking.length > 0) throw refuse(`it is partial where the reset wipes: it lacks ${lacking.map((l) => `${l.component} (${l.reason})`).join(', ')}`, Failure.BackupIncomplete);

  const { config, connections } = deps;
  const s3 = connections.s3(300_000);
  try {
    const stored = await readApprovedPlan(s3, config.objectStore.backupBucket, planned.stored);
    const golden = await goldenFigures(s3, config.objectStore.backupBucket, stored.tasks);
    const missing = uncovered(figures, golden.figures, golden.unmarked);
    if (missing.length > 0) throw refuse(`it does not cover the demo: ${missing.join('; ')}`);
    return {
      backupId: planned.backupId,
      field,
      manifestKeyId: planned.manifestKeyId,
      consistencyPoint: planned.consistencyPoint,
      figures: golden.figures,
      // The demo keeps its own ClickHouse marker table: it is never wiped, so nothing to load.
      tasks: planned.tasks.filter((t) => !(t.kind === 'clickhouseTable' && t.table === CH_MARKER)),
      plan: planned.stored,
    };
  } finally {
    s3.destroy();
  }
}

/** The golden backup's figures, from the restore plan's tasks (the manifest's pieces) and bucket listings. */
async function goldenFigures(s3: S3Client, bucket: string, tasks: RestoreTask[]): Promise<{ figures: GoldenFigures; unmarked: string[] }> {
  const figures: GoldenFigures = { postgres: [], clickhouse: [], kafka: [], objectStore: [] };
  const unmarked: string[] = [];
  for (const task of tasks) {
    switch (task.kind) {
      case 'postgresDatabase': {
        const details = (task.piece.details ?? {}) as { tableRows?: Record<string, number>; tableChecksums?: Record<string, string> };
        const rows = details.tableRows ?? {};
        if (!(PG_MARKER_NAME in rows)) unmarked.push(`its Postgres database ${task.database} has no demo marker (${PG_MARKER_NAME}): restored, it would replace a marked demo database with an unmarked one`);
        const tables = Object.keys(rows).filter((t) => t !== PG_MARKER_NAME).sort().map((table) => ({ table, rows: rows[table]! }));
        figures.postgres.push({ database: task.target, tables, checksums: Object.keys(details.tableChecksums ?? {}).length });
        break;
      }
      case 'clickhouseTable': {
        if (task.table === CH_MARKER) break;
        const partitions = task.pieces.filter((p) => !p.name.endsWith('/schema'));
        let db = figures.clickhouse.find((d) => d.database === task.target);
        if (!db) figures.clickhouse.push((db = { database: task.target, tables: [] }));
        db.tables.push({ table: task.table, rows: partitions.reduce((n, p) => n + (p.rows ?? 0), 0), partitions: partitions.length });
        db.tables.sort((a, b) => a.table.localeCompare(b.table));
        break;
      }
      case 'kafka': {
        const byTopic = new Map<string, { partition: number; messages: number }[]>();
        for (const piece of task.topicPieces) {
          const topic = kafkaTopicOf(piece);
          byTopic.set(topic, [...(byTopic.get(topic) ?? []), { partition: Number(piece.name.slice(topic.length + 1)), messages: piece.messages ?? 0 }]);
        }
        for (const [topic, partitions] of [...byTopic].sort(([a], [b]) => a.localeCompare(b))) {
          figures.kafka.push({ topic, partitions: partitions.sort((a, b) => a.partition - b.partition) });
        }
        break;
      }
      case 'bucket': {
        const listing = await getPieceJson<BucketListing>(s3, bucket, task.listing);
        const objects = listing?.objects ?? [];
        figures.objectStore.push({ bucket: task.target, objects: objects.length, bytes: objects.reduce((n, o) => n + o.size, 0) });
        break;
      }
    }
  }
  return { figures, unmarked };
}

/** What the wipe empties that the golden backup would not fill: a reseed must leave nothing of the demo out. */
function uncovered(wiped: DemoFigures, golden: GoldenFigures, unmarked: string[]): string[] {
  const missing = [...unmarked];
  for (const db of wiped.postgres ?? []) {
    if (!golden.postgres.some((g) => g.database === db.database)) missing.push(`it holds no dump of Postgres database ${db.database}`);
  }
  for (const db of wiped.clickhouse ?? []) {
    const tables = golden.clickhouse.find((g) => g.database === db.database)?.tables ?? [];
    for (const t of db.tables) if (!tables.some((g) => g.table === t.table)) missing.push(`it holds no ClickHouse table ${db.database}.${t.table}`);
  }
  for (const t of wiped.kafka?.topics ?? []) {
    if (!golden.kafka.some((g) => g.topic === t.topic)) missing.push(`it holds no messages of Kafka topic ${t.topic} (back it up among backup.kafkaDataTopics)`);
  }
  for (const b of wiped.objectStore ?? []) {
    if (!golden.objectStore.some((g) => g.bucket === b.bucket)) missing.push(`it holds no listing of bucket ${b.bucket}`);
  }
  return missing;
}

/**
 * The restore keeps what it replaces (`<db>_before_<run>`, `<table>_before_<run>`). After a demo
 * wipe that is the wiped copy: empty but for the demo marker, nothing worth keeping, and garbage
 * on every reset. Each is dropped only when it is exactly that (marked and empty); anything else
 * is kept and said so. Idempotent: a copy already gone is done.
 */
export async function dropWipedCopies(deps: ActivityDeps, { restoreId, tasks }: { restoreId: string; tasks: RestoreTaskHandle[] }): Promise<string[]> {
  const { connections } = deps;
  const notes: string[] = [];
  const admin = new pg.Client(connections.postgres());
  await admin.connect();
  try {
    for (const task of tasks) {
      if (task.kind !== 'postgresDatabase') continue;
      const aside = asideName(task.target, restoreId);
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [aside]);
      if ((found.rowCount ?? 0) === 0) continue;
      const client = new pg.Client(connections.postgres(aside));
      await client.connect();
      let wiped: boolean;
      try {
        wiped = (await hasDemoMarker(client)) && (await demoTableFigures(client)).every((t) => t.rows === 0);
      } finally {
        await client.end().catch(() => undefined);
      }
      if (!wiped) {
        notes.push(`postgres ${aside} (what the reseed replaced) is not the empty, marked copy the wipe left: kept`);
        continue;
      }
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [aside]);
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(aside)}`);
      notes.push(`postgres ${aside}: the wiped copy the reseed replaced, dropped`);
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
  const ch = connections.clickhouse(60_000);
  try {
    for (const task of tasks) {
      if (task.kind !== 'clickhouseTable') continue;
      const aside = sideNames(task.table, restoreId).aside;
      const [found] = await chRows<{ n: string | number }>(ch, `SELECT count() AS n FROM system.tables WHERE database = ${quoteString(task.target)} AND name = ${quoteString(aside)}`);
      if (Number(found?.n ?? 0) === 0) continue;
      const [counted] = await chRows<{ n: string | number }>(ch, `SELECT count() AS n FROM ${qualifiedName(task.target, aside)}`);
      if (Number(counted?.n ?? 0) !== 0) {
        notes.push(`clickhouse ${task.target}.${aside} (what the reseed replaced) holds ${Number(counted?.n)} rows, not the empty table the wipe left: kept`);
        continue;
      }
      await ch.command({ query: `DROP TABLE IF EXISTS ${qualifiedName(task.target, aside)}` });
      notes.push(`clickhouse ${task.target}.${aside}: the wiped copy the reseed replaced, dropped`);
    }
  } finally {
    await ch.close().catch(() => undefined);
  }
  return notes;
}

const SHA_CONCURRENCY = 4;

/**
 * Every object of a reseeded bucket against the golden backup's copy of it: same keys, sizes and
 * sha256 of the bytes (the restore's own check compares ETags, which multipart copies do not keep
 * comparable). Reads both copies whole, streamed.
 */
export async function goldenObjectChecks(deps: ActivityDeps, req: PlannedTaskRequest): Promise<VerifyResult> {
  const bucket = deps.config.objectStore.backupBucket;
  const s3 = deps.connections.s3(300_000);
  try {
    const task = approvedTask(await readApprovedPlan(s3, bucket, req.plan), req.task, 'bucket');
    const listing = await getPieceJson<BucketListing>(s3, bucket, task.listing);
    if (!listing) throw ApplicationFailure.nonRetryable(`bucket listing ${task.listing.key} is missing from ${bucket}`, Failure.BackupIncomplete);
    const progress = { checked: 0, of: listing.objects.length };
    const beat = throttledHeartbeat(() => progress);
    const wrong: string[] = [];
    await mapLimit(listing.objects, SHA_CONCURRENCY, async (object) => {
      const head = await headObject(s3, task.target, object.key);
      if (!head) wrong.push(`${object.key} missing`);
      else if (head.size !== object.size) wrong.push(`${object.key} is ${head.size} bytes, the golden backup's ${object.size}`);
      else if ((await objectSha256(s3, task.target, object.key)) !== (await objectSha256(s3, bucket, object.storedAt))) wrong.push(`${object.key}: sha256 differs from the golden backup's copy`);
      progress.checked++;
      beat();
    });
    const checks: VerifyCheck[] = [
      { name: `bucket ${task.target}: objects equal to the golden backup's by key, size and sha256`, expected: listing.objects.length, actual: listing.objects.length - wrong.length, ok: wrong.length === 0 },
      ...wrong.slice(0, 20).map((w) => ({ name: `bucket ${task.target}: ${w}`, expected: 'equal', actual: 'different', ok: false })),
    ];
    return { component: 'objectStore', unit: `bucket ${task.target}`, ok: wrong.length === 0, checks };
  } finally {
    s3.destroy();
  }
}
