/** Types of compaction (the maintenance runbook), shared by its workflow and activities (types only). */
import type { ApprovalPolicy, ApprovalRecord } from './approvalTypes';
import type { DestructiveClass } from './maintenanceConfig';
import type { MaintenanceWindow } from './maintenanceWindow';

/** The systems compaction plans; input.systems narrows a run to some of them. */
export const MAINTENANCE_SYSTEMS = ['clickhouse', 'postgres', 'kafka', 'buckets'] as const;
export type MaintenanceSystem = (typeof MAINTENANCE_SYSTEMS)[number];

export interface MaintenanceSettings {
  window: MaintenanceWindow;
  approval: ApprovalPolicy;
  preApproved: DestructiveClass[];
  backupBeforeDrop: boolean;
  busyWaitSeconds: number;
  mergeTimeoutSeconds: number;
}

/** A partition's figures from system.parts (active parts only). */
export interface PartitionFigures {
  parts: number;
  rows: number;
  bytes: number;
}

/** What the plan found for one ClickHouse partition, and what it will do with it, or why not. */
export interface PartitionPlan extends PartitionFigures {
  database: string;
  table: string;
  engine: string;
  partitionId: string;
  /** system.parts' `partition`: a SQL literal such as 202601 or '2026-01-01'. */
  partition: string;
  /** The newest date of the partition key's date column (system.parts max_date), when it has one. */
  maxDate?: string;
  action: 'merge' | 'drop' | 'none';
  /** Why nothing is done, or what to know about the action. */
  reason: string;
}

/** Rows a row-delete policy would delete from one table (tables that cannot drop whole partitions). */
export interface RowDeletePlan {
  database: string;
  table: string;
  column: string;
  /** Rows with toDate(column) before this day (YYYY-MM-DD) are deleted. */
  cutoff: string;
  rows: number;
}

export interface PostgresTablePlan {
  database: string;
  schema: string;
  table: string;
  liveTuples: number;
  deadTuples: number;
  lastVacuum?: string;
  lastAutovacuum?: string;
  action: 'vacuum' | 'vacuum full' | 'none';
  reason: string;
}

/** One partition of a retention policy's table, and what retention does with it, or why not. */
export interface PostgresPartition {
  schema: string;
  name: string;
  /** pg_class oid: a drop step acts only on this very table, never on another of the same name. */
  oid: number;
  /** pg_get_expr(relpartbound), in UTC and ISO dates: "FOR VALUES FROM (...) TO (...)" or "DEFAULT". */
  bounds: string;
  rows: number;
  /** Partitions to drop are counted (count(*)); the others are pg_class.reltuples estimates. */
  rowsCounted: boolean;
  /** pg_total_relation_size over the partition and its own partitions. */
  bytes: number;
  action: 'drop' | 'none';
  reason: string;
}

/** What a partition retention policy found in one database: the parent's partitions, or why none can be judged. */
export interface PostgresPartitionPlan {
  database: string;
  /** The parent, "schema.table", as the policy names it. */
  table: string;
  oid?: number;
  /** pg_get_partkeydef: RANGE (created_at). */
  key?: string;
  /** Partitions whose upper bound is at or before this instant (ISO) are dropped. */
  cutoff: string;
  /** Set when the table is missing, not partitioned, or partitioned in a way retention cannot judge: no step. */
  problem?: string;
  partitions: PostgresPartition[];
}

export interface TopicConfigChange {
  name: 'retention.ms' | 'retention.bytes' | 'cleanup.policy';
  from: string | undefined;
  to: string;
}

export interface TopicPlan {
  topic: string;
  changes: TopicConfigChange[];
  /** Set when the topic could not be read (it does not exist): nothing is changed. */
  problem?: string;
}

/** One partition of a record delete, as planned. */
export interface PartitionRecordCut {
  partition: number;
  /** The log start offset (low watermark). */
  low: number;
  high: number;
  /** The first offset at or after the cutoff (the high watermark when no record is that new): records before it are deleted. */
  offset: number;
  /** offset - low. */
  records: number;
}

/** The records a topic policy's deleteRecordsOlderThanDays would delete, per partition, or why none. */
export interface RecordDeletePlan {
  topic: string;
  /** Kafka's topic id: a topic deleted and created again under the same name has another. */
  topicId?: string;
  /** Records with a timestamp before this (ISO) are deleted. */
  cutoff: string;
  partitions: PartitionRecordCut[];
  records: number;
  /** Set when nothing can be deleted (no such topic, compact-only): why. */
  problem?: string;
}

export interface PrefixPlan {
  bucket: string;
  prefix: string;
  keepDays: number;
  /** Objects last modified before this are expired. */
  cutoff: string;
  objects: number;
  bytes: number;
}

interface StepBase {
  /** Stable within a plan: the system, then what it acts on. */
  id: string;
  /** Absent: not destructive (merges and vacuums never wait for a person). */
  destructive?: DestructiveClass;
  /** One line for the approval's action list and the UI. */
  summary: string;
}

export interface MergeStep extends StepBase {
  kind: 'merge';
  database: string;
  table: string;
  engine: string;
  partitionId: string;
  partition: string;
  final: boolean;
  /** Replacing/Collapsing/Summing/Aggregating engines: FINAL collapses rows, so the count may fall. */
  changesRows: boolean;
  maxParts: number;
  before: PartitionFigures;
}

export interface DropStep extends StepBase {
  kind: 'drop';
  destructive: 'partitionDrop';
  database: string;
  table: string;
  partitionId: string;
  partition: string;
  maxDate?: string;
  before: PartitionFigures;
}

export interface RowDeleteStep extends StepBase {
  kind: 'rowDelete';
  destructive: 'rowDelete';
  database: string;
  table: string;
  column: string;
  cutoff: string;
  rows: number;
}

export interface VacuumStep extends StepBase {
  kind: 'vacuum';
  database: string;
  schema: string;
  table: string;
  full: boolean;
  deadTuples: number;
  liveTuples: number;
}

/** DETACH PARTITION (CONCURRENTLY where it can), then DROP TABLE, of one Postgres partition. */
export interface PgPartitionDropStep extends StepBase {
  kind: 'pgPartitionDrop';
  destructive: 'partitionDrop';
  database: string;
  /** The parent. */
  schema: string;
  table: string;
  parentOid: number;
  partitionSchema: string;
  partition: string;
  partitionOid: number;
  bounds: string;
  before: { rows: number; bytes: number };
}

export interface TopicConfigStep extends StepBase {
  kind: 'topicConfig';
  destructive: 'kafkaConfig';
  topic: string;
  changes: TopicConfigChange[];
}

export interface ExpireStep extends StepBase {
  kind: 'expire';
  destructive: 'objectExpiry';
  bucket: string;
  prefix: string;
  cutoff: string;
  objects: number;
  bytes: number;
}

export interface RecordDeleteStep extends StepBase {
  kind: 'recordDelete';
  destructive: 'recordDelete';
  topic: string;
  topicId: string;
  cutoff: string;
  records: number;
  /** The partitions with records to delete: DeleteRecords up to `offset`, never past it. */
  partitions: { partition: number; low: number; offset: number }[];
}

export type MaintenanceStep = MergeStep | DropStep | RowDeleteStep | VacuumStep | TopicConfigStep | ExpireStep | PgPartitionDropStep | RecordDeleteStep;

/** The read-only plan: what every system looks like, and the steps, in the order they run. */
export interface MaintenancePlan {
  /** sha256 over the steps (canonical JSON): what an approval names. */
  hash: string;
  plannedAt: string;
  clickhouse: { server: string; partitions: PartitionPlan[]; rowDeletes: RowDeletePlan[] };
  postgres: PostgresTablePlan[];
  postgresPartitions: PostgresPartitionPlan[];
  kafka: TopicPlan[];
  kafkaRecordDeletes: RecordDeletePlan[];
  buckets: PrefixPlan[];
  steps: MaintenanceStep[];
}

/** What one step did: figures before and after, how long, or why it was skipped. */
export interface StepResult {
  id: string;
  kind: MaintenanceStep['kind'];
  summary: string;
  outcome: 'done' | 'already done' | 'skipped' | 'failed';
  /** Why skipped or failed; for a step found already done, what was found. */
  reason?: string;
  startedAt?: string;
  durationMs?: number;
  before?: Record<string, number | string | undefined>;
  after?: Record<string, number | string | undefined>;
  bytesReclaimed?: number;
  /** What was checked after the step, and whether it held. */
  verified?: string;
}

/**
 * A step that found its server busy, checked just before it would act: it did nothing. The
 * workflow asks again later, then skips the step saying why.
 */
export interface StepBusy {
  busy: string;
}

/** What a step's activity answers: what it did, or that it did not start because the server was busy. */
export type StepAttempt = StepResult | StepBusy;

export interface MaintenanceReport {
  workflowId: string;
  outcome: 'completed' | 'dry run' | 'window closed' | 'aborted' | 'failed';
  dryRun: boolean;
  window: { opened?: string; closes?: string; stopBy?: string };
  /** The plan as found: the report's "before". */
  plan: MaintenancePlan;
  approval?: ApprovalRecord;
  steps: StepResult[];
  /** Steps not started: the window closed, the run was aborted, or a step before them failed. */
  left: { id: string; summary: string }[];
  /** platformBackup's id when backupBeforeDrop backed up the partitions to drop. */
  backupId?: string;
  /**
   * What that backup holds: "database.table" to the partition ids, exactly the planned drops.
   * README, compaction, "Undoing a drop", says how to bring them back.
   */
  backupPartitions?: Record<string, string[]>;
  bytesReclaimed: number;
  abortedBy?: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  reportKey: string;
}
