import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RestoreStepResult, RestoreTask, VerifyResult } from '../contracts/restoreTypes';
import { Failure } from '../contracts/failures';
import { heartbeatingActivities } from './activityOptions';

/** Failures no retry can fix: every activity of the restore gives up on them at once. */
export const RESTORE_NON_RETRYABLE = [Failure.InvalidInput, Failure.BackupIncomplete, Failure.BackupUnusable, Failure.PgToolTooOld];

// A step whose worker died is retried on another (or the restarted) worker, finding or discarding
// its own earlier work.
const steps = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '12 hours', maximumAttempts: 5, nonRetryableErrorTypes: RESTORE_NON_RETRYABLE }),
);

/** Which backup a step reads and which restore it belongs to. */
export interface StepContext {
  backupId: string;
  restoreId: string;
}

type RestoreKind = RestoreTask['kind'];
type RestoreTaskOf<K extends RestoreKind> = Extract<RestoreTask, { kind: K }>;

interface RestoreStep<K extends RestoreKind> {
  run(task: RestoreTaskOf<K>, context: StepContext): Promise<RestoreStepResult>;
  verify(task: RestoreTaskOf<K>, context: StepContext): Promise<VerifyResult>;
  /** How the status and the details text name the step while it runs. */
  label(task: RestoreTaskOf<K>): string;
  /** Bytes the step reads from the backup: the RTO clock's progress. */
  bytes(task: RestoreTaskOf<K>): number;
  /** What the step writes, as the lease that keeps another restore off it: "<system>/<name>". */
  target(task: RestoreTaskOf<K>): string;
}

// One entry per kind of task: a kind without one does not compile.
const restoreSteps: { [K in RestoreKind]: RestoreStep<K> } = {
  postgresDatabase: {
    run: (task, { restoreId }) => steps.restorePostgresDatabase({ restoreId, database: task.database, target: task.target, piece: task.piece }),
    verify: (task) => steps.verifyPostgresDatabase({ target: task.target, piece: task.piece }),
    label: (task) => `postgres ${task.target}`,
    bytes: (task) => task.piece.size,
    target: (task) => `postgres/${task.target}`,
  },
  clickhouseTable: {
    run: (task, { backupId, restoreId }) =>
      steps.restoreClickHouseTable({ restoreId, backupId, database: task.database, table: task.table, targetDatabase: task.target, pieces: task.pieces }),
    verify: (task) => steps.verifyClickHouseTable({ database: task.database, table: task.table, targetDatabase: task.target, pieces: task.pieces }),
    label: (task) => `clickhouse ${task.target}.${task.table}`,
    bytes: (task) => task.pieces.reduce((n, p) => n + p.size, 0),
    target: (task) => `clickhouse/${task.target}`,
  },
  kafka: {
    run: (task, { backupId }) => steps.restoreKafka({ backupId, metadata: task.metadata, topicPieces: task.topicPieces, suffix: task.suffix }),
    verify: (task, { backupId }) => steps.verifyKafka({ backupId, metadata: task.metadata, topicPieces: task.topicPieces, suffix: task.suffix }),
    label: (task) => `kafka${task.suffix ? ` (suffix ${task.suffix})` : ''}`,
    bytes: (task) => task.metadata.size + task.topicPieces.reduce((n, p) => n + p.size, 0),
    target: (task) => `kafka/${task.suffix || '(in place)'}`,
  },
  bucket: {
    run: (task, { restoreId }) => steps.restoreBucket({ bucket: task.bucket, target: task.target, listing: task.listing, restoreId }),
    verify: (task) => steps.verifyBucket({ bucket: task.bucket, target: task.target, listing: task.listing }),
    label: (task) => `bucket ${task.target}`,
    bytes: (task) => task.listing.size,
    target: (task) => `buckets/${task.target}`,
  },
};

/** The table's entry for `task`, its methods bound to it. */
export function restoreStep<K extends RestoreKind>(task: RestoreTaskOf<K>) {
  const step: RestoreStep<K> = restoreSteps[task.kind];
  return {
    run: (context: StepContext) => step.run(task, context),
    verify: (context: StepContext) => step.verify(task, context),
    label: () => step.label(task),
    bytes: () => step.bytes(task),
    target: () => step.target(task),
  };
}

/** Every target the tasks write, once each: what a restore leases before it touches anything. */
export function restoreTargetsOf(tasks: RestoreTask[]): string[] {
  return [...new Set(tasks.map((t) => restoreStep(t).target()))].sort();
}

/** The plan's task of one kind, if it has one. */
export function findTask<K extends RestoreKind>(tasks: RestoreTask[], kind: K): RestoreTaskOf<K> | undefined {
  return tasks.find((t): t is RestoreTaskOf<K> => t.kind === kind);
}
