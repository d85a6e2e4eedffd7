/**
 * Types of restores and drills, shared by the workflows and their activities (types only:
 * workflow code imports this file).
 */
import type { ApprovalRecord } from './approvalTypes';
import type { BackupPiece, Component } from './backupTypes';

/**
 * Where each component is restored. Absent entries restore under the original name; drills map
 * everything to scratch names beside production.
 */
export interface RestoreTargets {
  /** Source database → target database. */
  postgres: Record<string, string>;
  /** Source ClickHouse database → target database. */
  clickhouse: Record<string, string>;
  /** Appended to every restored topic name and consumer-group id ('' restores under the same names). */
  kafkaSuffix: string;
  /** Source bucket → target bucket. */
  buckets: Record<string, string>;
}

/** One thing the execute phase will destroy or overwrite, listed in the plan a person approves. */
export interface DestructiveAction {
  component: Component;
  /** e.g. "rename database", "drop table", "overwrite objects", "set group offsets". */
  action: string;
  target: string;
  detail: string;
}

/** One unit of restore work: one activity call, with the manifest pieces it reads. */
export type RestoreTask =
  | { component: 'postgres'; kind: 'postgresDatabase'; database: string; target: string; piece: BackupPiece }
  | { component: 'clickhouse'; kind: 'clickhouseTable'; database: string; table: string; target: string; pieces: BackupPiece[] }
  | {
      component: 'kafka';
      kind: 'kafka';
      metadata: BackupPiece;
      topicPieces: BackupPiece[];
      suffix: string;
      /** Only these source topics, and group offsets on them (a demo reseed); absent: every topic the backup needs. */
      topics?: string[];
    }
  | { component: 'objectStore'; kind: 'bucket'; bucket: string; target: string; listing: BackupPiece };

/**
 * A restore task as the workflow holds it: everything but its pieces, which stay in the stored
 * plan (a table of thousands of partitions would pass Temporal's payload limit). `index` is the
 * task's place in the stored plan; `bytes` and `pieces` what it reads from the backup.
 */
export type RestoreTaskHandle = (
  | { component: 'postgres'; kind: 'postgresDatabase'; database: string; target: string }
  | { component: 'clickhouse'; kind: 'clickhouseTable'; database: string; table: string; target: string }
  | { component: 'kafka'; kind: 'kafka'; suffix: string }
  | { component: 'objectStore'; kind: 'bucket'; bucket: string; target: string }
) & { index: number; bytes: number; pieces: number };

/**
 * The plan a person approved, by reference: where it is stored, the sha256 of its bytes as
 * written, and its plan hash. A step refuses a stored plan that is no longer exactly this.
 */
export interface StoredPlanRef {
  key: string;
  sha256: string;
  planHash: string;
}

/** What every restore, verification and teardown step of a planned task is given. */
export interface PlannedTaskRequest {
  /** The restore run (its workflow id): what it creates is marked with it. */
  restoreId: string;
  plan: StoredPlanRef;
  /** The task's index in the stored plan. */
  task: number;
}

/** What one restore activity did. */
export interface RestoreStepResult {
  component: Component;
  unit: string;
  bytes: number;
  rows?: number;
  messages?: number;
  durationMs: number;
  /** Found already complete by a retried attempt. */
  resumed?: boolean;
  /** Facts worth a line in the report (clamped offsets, objects left alone, renamed databases...). */
  notes: string[];
}

/** One comparison made by verification. */
export interface VerifyCheck {
  name: string;
  expected: string | number;
  actual: string | number;
  ok: boolean;
}

export interface VerifyResult {
  component: Component;
  unit: string;
  ok: boolean;
  checks: VerifyCheck[];
  /**
   * Set when the checks were too many to carry (one per partition, say): `checks` then holds the
   * failed ones (the first few) and one line counting the rest, and this key in the backup bucket
   * holds them all.
   */
  allChecksKey?: string;
}

export interface TargetVsMeasured {
  targetMinutes: number;
  measuredMinutes: number;
  met: boolean;
}

/** The restore report: the workflow's result, also written to the backup bucket as JSON. */
export interface RestoreReport {
  workflowId: string;
  runId: string;
  kind: 'restore' | 'drill';
  backupId: string;
  environment: string;
  /** Who started the run, as Temporal recorded it (never an input field). */
  requestedBy: string;
  incidentStartedAt: string;
  consistencyPoint: string;
  startedAt: string;
  finishedAt: string;
  targets: RestoreTargets;
  components: Component[];
  plan: DestructiveAction[];
  /** The hash a person approved: backup, components, targets and every destructive action. */
  planHash: string;
  /** What the plan warned of: an unsigned backup accepted on request, a partial backup. */
  planWarnings: string[];
  approval: ApprovalRecord;
  steps: RestoreStepResult[];
  verification: VerifyResult[];
  verified: boolean;
  rto: TargetVsMeasured;
  rpo: TargetVsMeasured;
  phaseDurationsMs: Record<string, number>;
  reportKey: string;
}
