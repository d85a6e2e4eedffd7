import type { S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/activity';
import type { BackupPiece, Component, SkippedComponent } from '../../contracts/backupTypes';
import { Failure } from '../../contracts/failures';
import type { DestructiveAction, RestoreTargets, RestoreTask, RestoreTaskHandle, StoredPlanRef } from '../../contracts/restoreTypes';
import { planHash } from '../approval/approvals';
import { getJsonWithSha256, putJson } from '../storage/backupObjects';

/**
 * The whole restore plan, as stored in the backup bucket: its tasks carry every manifest piece
 * they read. The workflow holds only its handles (RestorePlan) and a StoredPlanRef.
 */
export interface StoredRestorePlan {
  backupId: string;
  environment: string;
  consistencyPoint: string;
  backupStartedAt: string;
  components: Component[];
  /** Components the request named that the backup does not hold, or that the backup skipped. */
  notInBackup: { component: Component; reason: string }[];
  /** Whether the backup holds every configured component in full (only complete ones are "latest"). */
  backupComplete: boolean;
  /** What the backup lacks, and why: skipped or narrowed components; empty when complete. */
  backupLacks: SkippedComponent[];
  /** Id of the key that signed the manifest (first 8 hex of its sha256); absent: unsigned, accepted by allowUnsignedBackup. */
  manifestKeyId?: string;
  /** What a person should read before approving: an unsigned manifest accepted, a partial backup, newer partial backups "latest" passed over. */
  warnings: string[];
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

/** The hash a person approves: the backup, its components, the targets and every destructive action. */
export function hashOfPlan(plan: Pick<StoredRestorePlan, 'backupId' | 'components' | 'targets' | 'actions'>): string {
  return planHash({ backupId: plan.backupId, components: plan.components, targets: plan.targets, actions: plan.actions });
}

/** The pieces a task reads from the backup. */
export function piecesOf(task: RestoreTask): BackupPiece[] {
  switch (task.kind) {
    case 'postgresDatabase':
      return [task.piece];
    case 'clickhouseTable':
      return task.pieces;
    case 'kafka':
      return [task.metadata, ...task.topicPieces];
    case 'bucket':
      return [task.listing];
  }
}

/** The task as the workflow holds it: its names and sizes, not its pieces. */
export function taskHandle(task: RestoreTask, index: number): RestoreTaskHandle {
  const pieces = piecesOf(task);
  const size = { index, bytes: pieces.reduce((n, p) => n + p.size, 0), pieces: pieces.length };
  switch (task.kind) {
    case 'postgresDatabase':
      return { component: task.component, kind: task.kind, database: task.database, target: task.target, ...size };
    case 'clickhouseTable':
      return { component: task.component, kind: task.kind, database: task.database, table: task.table, target: task.target, ...size };
    case 'kafka':
      return { component: task.component, kind: task.kind, suffix: task.suffix, ...size };
    case 'bucket':
      return { component: task.component, kind: task.kind, bucket: task.bucket, target: task.target, ...size };
  }
}

export async function storePlan(s3: S3Client, bucket: string, key: string, plan: StoredRestorePlan): Promise<StoredPlanRef> {
  const stored = await putJson(s3, bucket, key, plan);
  return { key, sha256: stored.sha256, planHash: plan.planHash };
}

/**
 * The stored plan, only if it is exactly the one approved: the bytes its plan step wrote, whose
 * hash is the approved one. Anything else is refused, non-retryable: an approval is for a plan,
 * and a plan changed after it (or gone) must not be executed.
 */
export async function readApprovedPlan(s3: S3Client, bucket: string, ref: StoredPlanRef): Promise<StoredRestorePlan> {
  const stored = await getJsonWithSha256<StoredRestorePlan>(s3, bucket, ref.key);
  const refuse = (why: string) =>
    ApplicationFailure.nonRetryable(`the restore plan ${ref.key} ${why}; nothing more is done from it: plan the restore again and have it approved`, Failure.PlanNotApproved);
  if (!stored) throw refuse('is gone');
  if (stored.sha256 !== ref.sha256) throw refuse(`has changed since it was approved (sha256 ${stored.sha256.slice(0, 12)}…, approved ${ref.sha256.slice(0, 12)}…)`);
  const recomputed = hashOfPlan(stored.value);
  if (recomputed !== ref.planHash || stored.value.planHash !== ref.planHash) throw refuse(`hashes to ${recomputed}, not the approved ${ref.planHash}`);
  return stored.value;
}

/** Task `index` of the approved plan, which must be of `kind`. */
export function approvedTask<K extends RestoreTask['kind']>(plan: StoredRestorePlan, index: number, kind: K): Extract<RestoreTask, { kind: K }> {
  const task = plan.tasks[index];
  if (!task || task.kind !== kind) {
    throw ApplicationFailure.nonRetryable(`the approved restore plan has no ${kind} task at index ${index}`, Failure.InvalidInput);
  }
  return task as Extract<RestoreTask, { kind: K }>;
}
