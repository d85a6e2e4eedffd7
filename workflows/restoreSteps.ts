import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RestoreStepResult, RestoreTaskHandle, StoredPlanRef, VerifyResult } from '../contracts/restoreTypes';
import { Failure } from '../contracts/failures';
import { heartbeatingActivities } from './activityOptions';

/** Failures no retry can fix: every activity of the restore gives up on them at once. */
export const RESTORE_NON_RETRYABLE = [Failure.InvalidInput, Failure.BackupIncomplete, Failure.BackupUnusable, Failure.PgToolTooOld, Failure.PlanNotApproved];

// A step whose worker died is retried on another (or the restarted) worker, finding or discarding
// its own earlier work.
const steps = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '12 hours', maximumAttempts: 5, nonRetryableErrorTypes: RESTORE_NON_RETRYABLE }),
);

/**
 * The approved plan each step reads its task from (by reference: a task's pieces stay in the
 * stored plan), and the restore run it belongs to.
 */
export interface StepContext {
  plan: StoredPlanRef;
  restoreId: string;
}

type RestoreKind = RestoreTaskHandle['kind'];
type RestoreTaskOf<K extends RestoreKind> = Extract<RestoreTaskHandle, { kind: K }>;

interface RestoreStep<K extends RestoreKind> {
  run(task: RestoreTaskOf<K>, context: StepContext): Promise<RestoreStepResult>;
  verify(task: RestoreTaskOf<K>, context: StepContext): Promise<VerifyResult>;
  /** How the status and the details text name the step while it runs. */
  label(task: RestoreTaskOf<K>): string;
  /** What the step writes, as the lease that keeps another restore off it: "<system>/<name>". */
  target(task: RestoreTaskOf<K>): string;
}

/** What a step of `task` is given: the approved plan and the task's place in it. */
const planned = (task: RestoreTaskHandle, { plan, restoreId }: StepContext) => ({ restoreId, plan, task: task.index });

// One entry per kind of task: a kind without one does not compile.
const restoreSteps: { [K in RestoreKind]: RestoreStep<K> } = {
  postgresDatabase: {
    run: (task, context) => steps.restorePostgresDatabase(planned(task, context)),
    verify: (task, context) => steps.verifyPostgresDatabase(planned(task, context)),
    label: (task) => `postgres ${task.target}`,
    target: (task) => `postgres/${task.target}`,
  },
  clickhouseTable: {
    run: (task, context) => steps.restoreClickHouseTable(planned(task, context)),
    verify: (task, context) => steps.verifyClickHouseTable(planned(task, context)),
    label: (task) => `clickhouse ${task.target}.${task.table}`,
    target: (task) => `clickhouse/${task.target}`,
  },
  kafka: {
    run: (task, context) => steps.restoreKafka(planned(task, context)),
    verify: (task, context) => steps.verifyKafka(planned(task, context)),
    label: (task) => `kafka${task.suffix ? ` (suffix ${task.suffix})` : ''}`,
    target: (task) => `kafka/${task.suffix || '(in place)'}`,
  },
  bucket: {
    run: (task, context) => steps.restoreBucket(planned(task, context)),
    verify: (task, context) => steps.verifyBucket(planned(task, context)),
    label: (task) => `bucket ${task.target}`,
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
    /** Bytes the step reads from the backup: the RTO clock's progress. */
    bytes: () => task.bytes,
    target: () => step.target(task),
  };
}

/** Every target the tasks write, once each: what a restore leases before it touches anything. */
export function restoreTargetsOf(tasks: RestoreTaskHandle[]): string[] {
  return [...new Set(tasks.map((t) => restoreStep(t).target()))].sort();
}

/** The plan's task of one kind, if it has one. */
export function findTask<K extends RestoreKind>(tasks: RestoreTaskHandle[], kind: K): RestoreTaskOf<K> | undefined {
  return tasks.find((t): t is RestoreTaskOf<K> => t.kind === kind);
}
