import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BackupTask, StoredPieces } from '../contracts/backupTypes';
import { Failure } from '../contracts/failures';
import { heartbeatingActivities } from './activityOptions';

/** Failures no retry can fix: every activity of the backup gives up on them at once. */
export const BACKUP_NON_RETRYABLE = [Failure.InvalidInput, Failure.PgToolTooOld, Failure.ObjectTooLarge, Failure.BackupIncomplete];

// A piece whose worker died is retried on another (or the restarted) worker, finding its own
// finished work.
const pieces = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '6 hours', maximumAttempts: 5, nonRetryableErrorTypes: BACKUP_NON_RETRYABLE }),
);

/** The backup a step writes into, and the one before it (unchanged objects are referenced there). */
export interface BackupContext {
  backupId: string;
  previousBackupId: string | undefined;
}

type BackupKind = BackupTask['kind'];
type BackupTaskOf<K extends BackupKind> = Extract<BackupTask, { kind: K }>;

interface BackupStep<K extends BackupKind> {
  /** Backs the task's pieces up; their list stays in the bucket, the workflow keeps where. */
  run(task: BackupTaskOf<K>, context: BackupContext): Promise<StoredPieces>;
  /** How the status and the details text name the step while it runs. */
  label(task: BackupTaskOf<K>): string;
}

// One entry per kind of task: a kind without one does not compile.
const backupSteps: { [K in BackupKind]: BackupStep<K> } = {
  postgresDatabase: {
    run: (task, { backupId }) => pieces.backupPostgresDatabase({ backupId, database: task.database }),
    label: (task) => `postgres ${task.database}`,
  },
  clickhouseTable: {
    run: (task, { backupId }) =>
      pieces.backupClickHouseTable({ backupId, database: task.database, table: task.table, ...(task.partitions ? { partitions: task.partitions } : {}) }),
    label: (task) => `clickhouse ${task.database}.${task.table}${task.partitions ? ` (partitions ${task.partitions.join(', ')})` : ''}`,
  },
  kafkaMetadata: {
    run: (_task, { backupId }) => pieces.backupKafkaMetadata({ backupId }),
    label: () => 'kafka metadata',
  },
  kafkaTopic: {
    run: (task, { backupId }) => pieces.backupKafkaTopicData({ backupId, topic: task.topic }),
    label: (task) => `kafka topic ${task.topic}`,
  },
  bucket: {
    run: (task, { backupId, previousBackupId }) => pieces.backupBucket({ backupId, bucket: task.bucket, previousBackupId }),
    label: (task) => `bucket ${task.bucket}`,
  },
};

/** The table's entry for `task`, its methods bound to it. */
export function backupStep<K extends BackupKind>(task: BackupTaskOf<K>) {
  const step: BackupStep<K> = backupSteps[task.kind];
  return {
    run: (context: BackupContext) => step.run(task, context),
    label: () => step.label(task),
  };
}
