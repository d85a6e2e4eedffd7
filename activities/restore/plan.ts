import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/activity';
import pg from 'pg';
import type { BackupManifest, BackupPiece, Component } from '../../contracts/backupTypes';
import { mapLimit } from '../../contracts/concurrency';
import type { DestructiveAction, RestoreTargets, RestoreTask } from '../../contracts/restoreTypes';
import { backupIdProblem } from '../../contracts/backupId';
import { backupPrefix, getJson, headObject, listBackupIds } from '../storage/backupObjects';
import { manifestKey } from '../backup/manifest';
import type { KafkaMetadataBackup } from '../kafka/backupFormat';
import type { ActivityDeps } from '../deps';
import { throttledHeartbeat } from '../common/heartbeat';
import { listBucket, type BucketListing } from '../objectStore/backup';
import { quoteString } from '../clickhouse/sql';
import { asideName } from '../postgres/restore';
import { Failure } from '../../contracts/failures';

export interface RestorePlanRequest {
  restoreId: string;
  /** A backup id, or 'latest' for the newest complete backup. */
  backupId: string;
  /** Undefined: every component the backup holds. */
  components?: Component[];
  targets: RestoreTargets;
  /** Read every object back and compare its sha256 with the manifest (default on). */
  verifyChecksums: boolean;
}

export interface RestorePlan {
  backupId: string;
  environment: string;
  consistencyPoint: string;
  backupStartedAt: string;
  components: Component[];
  /** Components the request named that the backup does not hold, or that the backup skipped. */
  notInBackup: { component: Component; reason: string }[];
  tasks: RestoreTask[];
  actions: DestructiveAction[];
  totalBytes: number;
  checkedObjects: number;
  checksumsVerified: boolean;
}

const CHECK_CONCURRENCY = 6;

export function createRestorePlanActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    /**
     * Read-only: picks the backup, proves it complete and intact (manifest present, every object
     * there with its size and, by default, its sha256), and lists every destructive action the
     * restore would take. Anything wrong refuses here, before a person is even asked.
     */
    async planRestore(request: RestorePlanRequest): Promise<RestorePlan> {
      const s3 = connections.s3(600_000);
      try {
        const backupId = await resolveBackup(s3, request.backupId);
        const manifest = (await getJson<BackupManifest>(s3, bucket, manifestKey(backupId)))!;
        const held = new Set(manifest.pieces.map((p) => p.component));
        const wanted = request.components ?? (['postgres', 'clickhouse', 'kafka', 'objectStore'] as Component[]);
        const notInBackup = wanted
          .filter((c) => !held.has(c))
          .map((component) => ({
            component,
            reason: manifest.skipped.find((s) => s.component === component)?.reason ?? 'the backup holds no piece of it',
          }));
        if (request.components && notInBackup.length > 0) {
          throw ApplicationFailure.nonRetryable(
            `input.components: backup ${backupId} cannot restore ${notInBackup.map((n) => `${n.component} (${n.reason})`).join(', ')}`,
            Failure.InvalidInput,
          );
        }
        const components = wanted.filter((c) => held.has(c));
        const pieces = manifest.pieces.filter((p) => components.includes(p.component));
        const tasks = buildTasks(pieces, request.targets);

        const problems = await checkObjects(s3, pieces, request.verifyChecksums);
        if (problems.length > 0) {
          throw ApplicationFailure.nonRetryable(
            `backup ${backupId} cannot be restored, nothing was touched: ${problems.slice(0, 20).join('; ')}${problems.length > 20 ? `; and ${problems.length - 20} more` : ''}`,
            'BackupUnusable',
            { problems },
          );
        }
        const actions = await destructiveActions(s3, tasks, request.restoreId);
        return {
          backupId,
          environment: manifest.environment,
          consistencyPoint: manifest.consistencyPoint,
          backupStartedAt: manifest.startedAt,
          components,
          notInBackup,
          tasks,
          actions,
          totalBytes: pieces.reduce((n, p) => n + p.size, 0),
          checkedObjects: pieces.length,
          checksumsVerified: request.verifyChecksums,
        };
      } finally {
        s3.destroy();
      }
    },
  };

  async function resolveBackup(s3: S3Client, requested: string): Promise<string> {
    if (requested !== 'latest') {
      const problem = backupIdProblem(requested);
      if (problem) throw ApplicationFailure.nonRetryable(`input.backupId: ${problem}`, Failure.InvalidInput);
      if (!(await headObject(s3, bucket, manifestKey(requested)))) {
        throw ApplicationFailure.nonRetryable(
          `input.backupId: backup ${requested} has no manifest.json in ${bucket}: it does not exist or never completed, and is never restored from`,
          Failure.BackupIncomplete,
        );
      }
      return requested;
    }
    const ids = await listBackupIds(s3, bucket);
    for (const id of ids.reverse()) {
      if (await headObject(s3, bucket, manifestKey(id))) return id;
    }
    throw ApplicationFailure.nonRetryable(`there is no complete backup in ${bucket} to restore from`, Failure.BackupIncomplete);
  }

  async function checkObjects(s3: S3Client, pieces: BackupPiece[], checksums: boolean): Promise<string[]> {
    const problems: string[] = [];
    const progress = { checked: 0, of: pieces.length };
    const beat = throttledHeartbeat(() => progress);
    await mapLimit(pieces, CHECK_CONCURRENCY, async (piece) => {
      const head = await headObject(s3, bucket, piece.key);
      if (!head) problems.push(`${piece.key} is missing`);
      else if (head.size !== piece.size) problems.push(`${piece.key} is ${head.size} bytes, the manifest says ${piece.size}`);
      else if (checksums && piece.sha256) {
        const actual = await sha256Of(s3, piece.key);
        if (actual !== piece.sha256) problems.push(`${piece.key} fails its checksum (sha256 ${actual.slice(0, 12)}…, the manifest says ${piece.sha256.slice(0, 12)}…)`);
      }
      if (head && piece.component === 'objectStore') {
        const listing = await getJson<BucketListing>(s3, bucket, piece.key);
        for (const object of listing?.objects ?? []) {
          const stored = await headObject(s3, bucket, object.storedAt);
          if (!stored) problems.push(`${object.storedAt} (copy of ${listing!.bucket}/${object.key}) is missing`);
          else if (stored.size !== object.size) problems.push(`${object.storedAt} is ${stored.size} bytes, the listing says ${object.size}`);
        }
      }
      progress.checked++;
      beat();
    });
    return problems.sort();
  }

  async function sha256Of(s3: S3Client, key: string): Promise<string> {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const hash = createHash('sha256');
    for await (const chunk of object.Body as Readable) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }

  async function destructiveActions(s3: S3Client, tasks: RestoreTask[], restoreId: string): Promise<DestructiveAction[]> {
    const actions: DestructiveAction[] = [];
    const pgTargets = tasks.flatMap((t) => (t.kind === 'postgresDatabase' ? [t.target] : []));
    if (pgTargets.length > 0) {
      const client = new pg.Client(connections.postgres());
      await client.connect();
      try {
        const { rows } = await client.query<{ datname: string; size: string }>(
          'SELECT datname, pg_database_size(datname)::text AS size FROM pg_database WHERE datname = ANY($1)',
          [pgTargets],
        );
        for (const row of rows) {
          actions.push({
            component: 'postgres',
            action: 'replace database',
            target: row.datname,
            detail: `the existing ${row.datname} (${(Number(row.size) / 1024 ** 2).toFixed(1)} MiB) is renamed to ${asideName(row.datname, restoreId)} and kept; its sessions are ended; the restored copy takes the name`,
          });
        }
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    const chTables = tasks.flatMap((t) => (t.kind === 'clickhouseTable' ? [t] : []));
    if (chTables.length > 0) {
      const ch = connections.clickhouse(60_000);
      try {
        for (const t of chTables) {
          const result = await ch.query({
            query: `SELECT sum(rows) AS rows, count() AS parts FROM system.parts WHERE database = ${quoteString(t.target)} AND table = ${quoteString(t.table)} AND active`,
            format: 'JSONEachRow',
          });
          const [row] = await result.json<{ rows: string | number; parts: string | number }>();
          const exists = await ch.query({
            query: `SELECT count() AS n FROM system.tables WHERE database = ${quoteString(t.target)} AND name = ${quoteString(t.table)}`,
            format: 'JSONEachRow',
          });
          const [present] = await exists.json<{ n: string | number }>();
          if (Number(present?.n ?? 0) > 0) {
            actions.push({
              component: 'clickhouse',
              action: 'drop and recreate table',
              target: `${t.target}.${t.table}`,
              detail: `DROP TABLE ${t.target}.${t.table} (${Number(row?.rows ?? 0)} rows now), recreate it from the saved schema, load ${t.pieces.length - 1} partition(s)`,
            });
          }
        }
      } finally {
        await ch.close().catch(() => undefined);
      }
    }
    const kafka = tasks.find((t) => t.kind === 'kafka');
    if (kafka && kafka.kind === 'kafka') {
      const metadata = await getJson<KafkaMetadataBackup>(s3, bucket, kafka.metadata.key);
      const admin = connections.kafka().admin();
      await admin.connect();
      try {
        const existingGroups = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
        for (const group of metadata?.groups ?? []) {
          const target = `${group.groupId}${kafka.suffix}`;
          const committed = group.offsets.flatMap((o) => o.partitions).filter((p) => p.offset !== '-1').length;
          if (committed > 0 && existingGroups.has(target)) {
            actions.push({
              component: 'kafka',
              action: 'set group offsets',
              target,
              detail: `overwrite the committed offsets of ${committed} partition(s) with the saved ones (the group must have no running consumers)`,
            });
          }
        }
      } finally {
        await admin.disconnect();
      }
    }
    for (const t of tasks) {
      if (t.kind !== 'bucket') continue;
      const listing = await getJson<BucketListing>(s3, bucket, t.listing.key);
      let present: Awaited<ReturnType<typeof listBucket>> = [];
      try {
        present = await listBucket(s3, t.target);
      } catch {
        // The target bucket does not exist yet: nothing in it to overwrite.
      }
      const now = new Map(present.map((o) => [o.key, o]));
      const differing = (listing?.objects ?? []).filter((o) => now.has(o.key) && now.get(o.key)!.etag !== o.etag).length;
      if (differing > 0) {
        actions.push({
          component: 'objectStore',
          action: 'overwrite objects',
          target: t.target,
          detail: `${differing} object(s) in ${t.target} differ from the backup and are overwritten; objects the backup does not list are left in place`,
        });
      }
    }
    return actions;
  }
}

/** Turns the manifest's pieces into one restore task per database, table, Kafka cluster and bucket. */
export function buildTasks(pieces: BackupPiece[], targets: RestoreTargets): RestoreTask[] {
  const tasks: RestoreTask[] = [];
  const tables = new Map<string, BackupPiece[]>();
  const topicPieces: BackupPiece[] = [];
  let metadata: BackupPiece | undefined;
  for (const piece of pieces) {
    switch (piece.component) {
      case 'postgres':
        tasks.push({ component: 'postgres', kind: 'postgresDatabase', database: piece.name, target: targets.postgres[piece.name] ?? piece.name, piece });
        break;
      case 'clickhouse': {
        const table = piece.name.slice(0, piece.name.indexOf('/'));
        tables.set(table, [...(tables.get(table) ?? []), piece]);
        break;
      }
      case 'kafka':
        if (piece.name === 'metadata') metadata = piece;
        else topicPieces.push(piece);
        break;
      case 'objectStore': {
        const source = String(piece.details?.bucket ?? piece.name.replace(/\/listing$/, ''));
        tasks.push({ component: 'objectStore', kind: 'bucket', bucket: source, target: targets.buckets[source] ?? source, listing: piece });
        break;
      }
    }
  }
  for (const [name, tablePieces] of tables) {
    const [database, table] = name.split('.') as [string, string];
    tasks.push({ component: 'clickhouse', kind: 'clickhouseTable', database, table, target: targets.clickhouse[database] ?? database, pieces: tablePieces });
  }
  if (metadata) tasks.push({ component: 'kafka', kind: 'kafka', metadata, topicPieces, suffix: targets.kafkaSuffix });
  return tasks;
}
