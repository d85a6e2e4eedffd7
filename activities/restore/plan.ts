import type { S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { BackupPiece, Component } from '../../contracts/backupTypes';
import { mapLimit } from '../../contracts/concurrency';
import type { DestructiveAction, RestoreTargets, RestoreTask, RestoreTaskHandle, StoredPlanRef } from '../../contracts/restoreTypes';
import { backupIdProblem } from '../../contracts/backupId';
import { backupPrefix, getJson, headObject, listBackupIds, listSizes, objectSha256 } from '../storage/backupObjects';
import { manifestKey } from '../backup/manifest';
import { checkManifest, ManifestRefusal, storedCopyProblem, type CheckedManifest } from '../backup/manifestCheck';
import { configuredComponents, manifestCompleteness } from '../backup/completeness';
import { resolveLatest, type Inspected, type PassedOver } from './latest';
import type { ActivityDeps } from '../deps';
import { throttledHeartbeat } from '../common/heartbeat';
import type { BucketListing } from '../objectStore/backup';
import { plannedPostgresRestoreActions } from '../postgres/restoreActions';
import { plannedClickHouseRestoreActions } from '../clickhouse/restoreActions';
import { plannedKafkaRestoreActions } from '../kafka/restoreActions';
import { plannedObjectStoreRestoreActions } from '../objectStore/restoreActions';
import type { PlannedRestoreActions, RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import { Failure } from '../../contracts/failures';
import { restorePlanKey } from '../../contracts/reportKey';
import { hashOfPlan, storePlan, taskHandle, type StoredRestorePlan } from './storedPlan';
import { scratchTargets, targetProblems, type Inventory, type ScratchSuffixes } from './targets';

export interface RestorePlanRequest {
  restoreId: string;
  /** A backup id, or 'latest' for the newest complete backup. */
  backupId: string;
  /** Undefined: every component the backup holds. */
  components?: Component[];
  /** Where a restore puts each piece (unnamed pieces restore in place); ignored for a drill. */
  targets?: RestoreTargets;
  /** A drill: every piece goes to its scratch name, derived from the backup itself. */
  scratch?: ScratchSuffixes;
  /**
   * Who owns what a drill or a restore beside production creates (the restore run's workflow
   * id): an existing target that does not carry this owner's marker refuses the plan.
   */
  owner?: string;
  /** Read every object back and compare its sha256 with the manifest (default on). */
  verifyChecksums: boolean;
  /**
   * Accept an unsigned manifest: backups written before manifests were signed, or by a worker
   * without backup.manifestKey. A signed manifest that does not verify is never accepted. With
   * backupId "latest" it counts only when this worker holds no manifest key (nothing could have
   * been signed): otherwise an unsigned newest manifest is refused, and an older unsigned backup
   * is restored by naming it.
   */
  allowUnsignedBackup?: boolean;
  /**
   * Restore only these Kafka topics (their messages, and group offsets on them); absent: every
   * topic the backup needs. A demo reseed names the demo's topics: the backup's metadata lists
   * the whole cluster's.
   */
  kafkaTopics?: string[];
}

/**
 * What planRestore returns to the workflow: the stored plan without its pieces (each task as a
 * handle), and where the whole plan is stored. Steps are given that reference.
 */
export type RestorePlan = Omit<StoredRestorePlan, 'tasks'> & { tasks: RestoreTaskHandle[]; stored: StoredPlanRef };

const CHECK_CONCURRENCY = 6;

/** Each system's destructive actions, asked in this order: the plan lists them so. */
const PLANNED_ACTIONS: { [C in Component]: PlannedRestoreActions<TaskOf<C>> } = {
  postgres: plannedPostgresRestoreActions,
  clickhouse: plannedClickHouseRestoreActions,
  kafka: plannedKafkaRestoreActions,
  objectStore: plannedObjectStoreRestoreActions,
};

/** Every destructive action the restore's tasks would take, system by system. */
async function destructiveActions(context: RestoreActionContext, tasks: RestoreTask[]): Promise<DestructiveAction[]> {
  const actions: DestructiveAction[] = [];
  for (const component of Object.keys(PLANNED_ACTIONS) as Component[]) {
    actions.push(...(await plannedActionsOf(component, context, tasks)));
  }
  return actions;
}

function plannedActionsOf<C extends Component>(component: C, context: RestoreActionContext, tasks: RestoreTask[]): Promise<DestructiveAction[]> {
  const own = tasks.filter((t): t is TaskOf<C> => t.component === component);
  return PLANNED_ACTIONS[component](context, own);
}

export function createRestorePlanActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;
  const inventory: Inventory = {
    postgres: config.postgres.databases,
    postgresMaintenance: config.postgres.maintenanceDatabase,
    clickhouse: config.clickhouse.databases.map((d) => d.name),
    buckets: config.objectStore.buckets,
    backupBucket: bucket,
  };

  return {
    /**
     * Read-only: picks the backup, proves it authentic (its manifest signed by this worker's key,
     * every object in its folder) and intact (every object there with its size and, by default,
     * its sha256), says what it lacks if partial, and lists every destructive action the restore
     * would take. Anything wrong refuses here, before a person is even asked. The whole plan is
     * stored in the backup bucket, one object per run; the workflow gets its handles and where it is.
     */
    async planRestore(request: RestorePlanRequest): Promise<RestorePlan> {
      const s3 = connections.s3(600_000);
      try {
        const chosen = await resolveBackup(s3, request);
        const { backupId, checked } = chosen;
        const manifest = checked.manifest;
        const completeness = manifestCompleteness(manifest, configuredComponents(config));
        const warnings = [
          ...(checked.keyId ? [] : [`backup ${backupId}'s manifest is UNSIGNED, accepted because allowUnsignedBackup is set: nothing shows that ballast wrote it as it is`]),
          ...(completeness.complete ? [] : [`backup ${backupId} is PARTIAL: it lacks ${completeness.lacks.map((l) => `${l.component} (${l.reason})`).join(', ')}`]),
          ...chosen.passedOver.map((p) => `"latest" passed over the newer backup ${p.backupId}: ${p.reason}`),
        ];
        const held = new Set(manifest.pieces.map((p) => p.component));
        const wanted = request.components ?? (['postgres', 'clickhouse', 'kafka', 'objectStore'] as Component[]);
        const notInBackup = wanted
          .filter((c) => !held.has(c))
          .map((component) => ({
            component,
            reason:
              completeness.lacks.find((s) => s.component === component)?.reason ??
              manifest.skipped.find((s) => s.component === component)?.reason ??
              'the backup holds no piece of it',
          }));
        if (request.components && notInBackup.length > 0) {
          throw ApplicationFailure.nonRetryable(
            `input.components: backup ${backupId} cannot restore ${notInBackup.map((n) => `${n.component} (${n.reason})`).join(', ')}`,
            Failure.InvalidInput,
          );
        }
        const components = wanted.filter((c) => held.has(c));
        const selected = request.kafkaTopics ? new Set(request.kafkaTopics) : undefined;
        const pieces = manifest.pieces.filter((p) => components.includes(p.component) && (!selected || p.component !== 'kafka' || p.name === 'metadata' || selected.has(kafkaTopicOf(p))));
        const targets = request.scratch ? scratchTargets(manifest.pieces, request.scratch) : (request.targets ?? { postgres: {}, clickhouse: {}, kafkaSuffix: '', buckets: {} });
        const tasks = buildTasks(pieces, targets, request.kafkaTopics);
        const targetsRefused = targetProblems(manifest.pieces, tasks, targets, inventory, request.scratch);
        if (targetsRefused.length > 0) {
          throw ApplicationFailure.nonRetryable(`restore refused at plan, nothing was touched: ${targetsRefused.join('; ')}`, Failure.TargetRefused, { problems: targetsRefused });
        }

        const problems = await checkObjects(s3, backupId, pieces, request.verifyChecksums);
        if (problems.length > 0) {
          throw ApplicationFailure.nonRetryable(
            `backup ${backupId} cannot be restored, nothing was touched: ${problems.slice(0, 20).join('; ')}${problems.length > 20 ? `; and ${problems.length - 20} more` : ''}`,
            Failure.BackupUnusable,
            { problems },
          );
        }
        const actions = await destructiveActions({ deps, s3, restoreId: request.restoreId, owner: request.owner ?? request.restoreId }, tasks);
        const plan: StoredRestorePlan = {
          backupId,
          environment: manifest.environment,
          consistencyPoint: manifest.consistencyPoint,
          backupStartedAt: manifest.startedAt,
          components,
          notInBackup,
          backupComplete: completeness.complete,
          backupLacks: completeness.lacks,
          ...(checked.keyId ? { manifestKeyId: checked.keyId } : {}),
          warnings,
          tasks,
          actions,
          targets,
          planHash: hashOfPlan({ backupId, components, targets, actions }),
          totalBytes: pieces.reduce((n, p) => n + p.size, 0),
          checkedObjects: pieces.length,
          checksumsVerified: request.verifyChecksums,
        };
        const stored = await storePlan(s3, bucket, restorePlanKey(...runOf('planRestore')), plan);
        return { ...plan, tasks: plan.tasks.map(taskHandle), stored };
      } finally {
        s3.destroy();
      }
    },
  };

  /**
   * The backup to restore and its manifest, checked: signed by one of this worker's keys (or
   * unsigned and accepted on request), its own, every piece in its folder. "latest" is the newest
   * complete backup; the newer partial ones it passes over are returned for the plan to say so.
   */
  async function resolveBackup(s3: S3Client, request: RestorePlanRequest): Promise<{ backupId: string; checked: CheckedManifest; passedOver: PassedOver[] }> {
    const keys = connections.manifestVerifyingKeys;
    const requested = request.backupId;
    if (requested !== 'latest') {
      const problem = backupIdProblem(requested);
      if (problem) throw ApplicationFailure.nonRetryable(`input.backupId: ${problem}`, Failure.InvalidInput);
      const raw = await refusing(() => readManifest(s3, requested));
      if (raw === undefined) {
        throw ApplicationFailure.nonRetryable(
          `input.backupId: backup ${requested} has no manifest.json in ${bucket}: it does not exist or never completed, and is never restored from`,
          Failure.BackupIncomplete,
        );
      }
      const checked = await refusing(() => checkManifest(raw, { backupId: requested, keys, allowUnsigned: request.allowUnsignedBackup === true }));
      return { backupId: requested, checked, passedOver: [] };
    }
    // With a key, an unsigned manifest among the newest is suspect: it is accepted only by name.
    const allowUnsigned = request.allowUnsignedBackup === true && keys.length === 0;
    const latest = await resolveLatest(await listBackupIds(s3, bucket), async (id): Promise<Inspected<CheckedManifest>> => {
      try {
        const raw = await readManifest(s3, id);
        if (raw === undefined) return { kind: 'no manifest' };
        const checked = checkManifest(raw, { backupId: id, keys, allowUnsigned });
        const { complete, lacks } = manifestCompleteness(checked.manifest, configuredComponents(config));
        return { kind: 'usable', complete, lacks, value: checked };
      } catch (err) {
        if (err instanceof ManifestRefusal) return { kind: 'refused', problem: err.message };
        throw err;
      }
    });
    const passed = latest.passedOver.length > 0 ? ` (${latest.passedOver.length} newer partial backup(s) passed over: ${latest.passedOver.map((p) => p.backupId).join(', ')})` : '';
    if (latest.kind === 'refused') {
      const hint = request.allowUnsignedBackup && keys.length > 0 ? ' With "latest", allowUnsignedBackup counts only on a worker without backup.manifestKey: name the backup in input.backupId.' : '';
      throw ApplicationFailure.nonRetryable(
        `input.backupId "latest": ${latest.problem}. Nothing was touched, and no older backup is taken in its place${passed}; name a backup in input.backupId to restore another one.${hint}`,
        Failure.BackupNotAuthentic,
      );
    }
    if (latest.kind === 'none') {
      throw ApplicationFailure.nonRetryable(`there is no complete backup in ${bucket} to restore from${passed}`, Failure.BackupIncomplete);
    }
    return { backupId: latest.backupId, checked: latest.value, passedOver: latest.passedOver };
  }

  /** Runs `work`, turning a refused manifest into the plan's non-retryable failure. */
  async function refusing<T>(work: () => Promise<T> | T): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof ManifestRefusal) {
        throw ApplicationFailure.nonRetryable(`input.backupId: ${err.message}. Nothing was touched.`, Failure.BackupNotAuthentic);
      }
      throw err;
    }
  }

  /** manifest.json of backup `id` as parsed; undefined when there is none. */
  async function readManifest(s3: S3Client, id: string): Promise<unknown> {
    try {
      return await getJson<unknown>(s3, bucket, manifestKey(id));
    } catch (err) {
      if (err instanceof SyntaxError) throw new ManifestRefusal(`backup ${id} is not authentic: its manifest.json is not JSON (${err.message})`);
      throw err;
    }
  }

  /**
   * Every piece's object is there with its size and, when asked, its sha256. The pieces whose
   * content steers the restore (bucket listings, Kafka metadata) are always read back whole and
   * hashed; a listing's stored copies must be where a backup keeps them (this backup's folder, or
   * the earlier backup's it names), with the listed size and, for single-part objects, ETag.
   */
  async function checkObjects(s3: S3Client, backupId: string, pieces: BackupPiece[], checksums: boolean): Promise<string[]> {
    const problems: string[] = [];
    const progress = { checked: 0, of: pieces.length };
    const beat = throttledHeartbeat(() => progress);
    // Sizes from one listing of the folder (one request per 1,000 objects, not a HEAD each); a
    // piece it does not show is looked up on its own.
    const listed = await listSizes(s3, bucket, backupPrefix(backupId), beat);
    await mapLimit(pieces, CHECK_CONCURRENCY, async (piece) => {
      const size = listed.get(piece.key);
      const head = size !== undefined ? { size } : await headObject(s3, bucket, piece.key);
      const steering = piece.component === 'objectStore' || (piece.component === 'kafka' && piece.name === 'metadata');
      if (!head) problems.push(`${piece.key} is missing`);
      else if (head.size !== piece.size) problems.push(`${piece.key} is ${head.size} bytes, the manifest says ${piece.size}`);
      else if (steering && !piece.sha256) problems.push(`${piece.key} has no sha256 in the manifest, and the restore would follow what it says`);
      else if ((checksums || steering) && piece.sha256) {
        const actual = await objectSha256(s3, bucket, piece.key);
        if (actual !== piece.sha256) problems.push(`${piece.key} fails its checksum (sha256 ${actual.slice(0, 12)}…, the manifest says ${piece.sha256.slice(0, 12)}…)`);
        else if (piece.component === 'objectStore') problems.push(...(await listingProblems(s3, backupId, piece)));
      }
      progress.checked++;
      beat();
    });
    return problems.sort();
  }

  /** The stored copies a bucket listing (already checked against its sha256) names. */
  async function listingProblems(s3: S3Client, backupId: string, piece: BackupPiece): Promise<string[]> {
    const listing = await getJson<BucketListing>(s3, bucket, piece.key);
    const source = String(piece.details?.bucket ?? piece.name.replace(/\/listing$/, ''));
    if (!listing || !Array.isArray(listing.objects) || listing.bucket !== source) {
      return [`${piece.key} is not the listing of bucket ${source}`];
    }
    const problems: string[] = [];
    for (const object of listing.objects) {
      const misplaced = storedCopyProblem(object, listing.bucket, backupId);
      if (misplaced) {
        problems.push(`${piece.key}: ${misplaced}`);
        continue;
      }
      const stored = await headObject(s3, bucket, object.storedAt);
      if (!stored) problems.push(`${object.storedAt} (copy of ${listing.bucket}/${object.key}) is missing`);
      else if (stored.size !== object.size) problems.push(`${object.storedAt} is ${stored.size} bytes, the listing says ${object.size}`);
      // A server-side copy keeps a single-part object's ETag (its MD5); a multipart one's is not comparable.
      else if (!object.etag.includes('-') && stored.etag !== object.etag) {
        problems.push(`${object.storedAt} has ETag ${stored.etag}, the listing says ${object.etag} (copy of ${listing.bucket}/${object.key})`);
      }
    }
    return problems;
  }
}

/** The workflow run an activity works for: a stored plan belongs to one. */
export function runOf(activity: string): [workflowId: string, runId: string] {
  const run = Context.current().info.workflowExecution;
  if (!run) throw ApplicationFailure.nonRetryable(`${activity} runs only as an activity of a workflow run`, Failure.InvalidInput);
  return [run.workflowId, run.runId];
}

/** Turns the manifest's pieces into one restore task per database, table, Kafka cluster and bucket. */
export function buildTasks(pieces: BackupPiece[], targets: RestoreTargets, kafkaTopics?: string[]): RestoreTask[] {
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
  if (metadata) tasks.push({ component: 'kafka', kind: 'kafka', metadata, topicPieces, suffix: targets.kafkaSuffix, ...(kafkaTopics ? { topics: [...kafkaTopics].sort() } : {}) });
  return tasks;
}

/** The topic a Kafka data piece (`<topic>/<partition>`) holds. */
export function kafkaTopicOf(piece: BackupPiece): string {
  return piece.name.slice(0, piece.name.lastIndexOf('/'));
}
