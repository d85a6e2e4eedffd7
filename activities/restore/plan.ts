import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/activity';
import type { BackupManifest, BackupPiece, Component } from '../../contracts/backupTypes';
import { mapLimit } from '../../contracts/concurrency';
import type { DestructiveAction, RestoreTargets, RestoreTask } from '../../contracts/restoreTypes';
import { backupIdProblem } from '../../contracts/backupId';
import { getJson, headObject, listBackupIds } from '../storage/backupObjects';
import { manifestKey } from '../backup/manifest';
import type { ActivityDeps } from '../deps';
import { throttledHeartbeat } from '../common/heartbeat';
import type { BucketListing } from '../objectStore/backup';
import { plannedPostgresRestoreActions } from '../postgres/restoreActions';
import { plannedClickHouseRestoreActions } from '../clickhouse/restoreActions';
import { plannedKafkaRestoreActions } from '../kafka/restoreActions';
import { plannedObjectStoreRestoreActions } from '../objectStore/restoreActions';
import type { PlannedRestoreActions, RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import { Failure } from '../../contracts/failures';
import { planHash } from '../approval/approvals';
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
  /** Where every piece goes: the request's targets, or a drill's scratch names. */
  targets: RestoreTargets;
  actions: DestructiveAction[];
  /** What a person approves: the backup, components, targets and every action, hashed. */
  planHash: string;
  totalBytes: number;
  checkedObjects: number;
  checksumsVerified: boolean;
}

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
        const targets = request.scratch ? scratchTargets(manifest.pieces, request.scratch) : (request.targets ?? { postgres: {}, clickhouse: {}, kafkaSuffix: '', buckets: {} });
        const tasks = buildTasks(pieces, targets);
        const targetsRefused = targetProblems(manifest.pieces, tasks, targets, inventory, request.scratch);
        if (targetsRefused.length > 0) {
          throw ApplicationFailure.nonRetryable(`restore refused at plan, nothing was touched: ${targetsRefused.join('; ')}`, Failure.TargetRefused, { problems: targetsRefused });
        }

        const problems = await checkObjects(s3, pieces, request.verifyChecksums);
        if (problems.length > 0) {
          throw ApplicationFailure.nonRetryable(
            `backup ${backupId} cannot be restored, nothing was touched: ${problems.slice(0, 20).join('; ')}${problems.length > 20 ? `; and ${problems.length - 20} more` : ''}`,
            Failure.BackupUnusable,
            { problems },
          );
        }
        const actions = await destructiveActions({ deps, s3, restoreId: request.restoreId, owner: request.owner ?? request.restoreId }, tasks);
        return {
          backupId,
          environment: manifest.environment,
          consistencyPoint: manifest.consistencyPoint,
          backupStartedAt: manifest.startedAt,
          components,
          notInBackup,
          tasks,
          actions,
          targets,
          planHash: planHash({ backupId, components, targets, actions }),
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
