/**
 * demoReset's plan, steps and report, shared by the workflow and its activities (types only:
 * workflow code imports this file).
 */
import type { ApprovalPolicy, ApprovalRecord } from './approvalTypes';
import type { Component } from './backupTypes';
import type { RestoreStepResult, RestoreTaskHandle, StoredPlanRef, VerifyResult } from './restoreTypes';

/** What a demo reset reads from the config: workflow code cannot read it. */
export interface DemoResetSettings {
  environment: 'demo' | 'staging' | 'production';
  components: Component[];
  keep: Component[];
  goldenBackupId?: string;
  /** The approval gate's policy, with demoReset.confirmationTimeoutMinutes as its timeout. */
  confirmation: ApprovalPolicy;
}

/** One system's demo marker, as the plan found it. */
export interface MarkerCheck {
  component: Component;
  /** "postgres database shop", "kafka cluster (topic __ballast_demo)", "bucket platform-data". */
  target: string;
  present: boolean;
}

export interface KafkaPartitionFigures {
  partition: number;
  logStart: number;
  highWatermark: number;
  /** highWatermark - logStart: what the purge deletes. */
  messages: number;
}

export interface KafkaTopicFigures {
  topic: string;
  /** cleanup.policy as the plan found it: a compact-only topic gets `delete` added for the purge, then this back. */
  cleanupPolicy: string;
  partitions: KafkaPartitionFigures[];
}

export interface KafkaGroupFigures {
  groupId: string;
  members: number;
  /** Committed offsets on the purged topics. */
  offsets: { topic: string; partition: number; offset: number }[];
}

export interface KafkaFigures {
  topics: KafkaTopicFigures[];
  groups: KafkaGroupFigures[];
}

export interface TableFigures {
  /** "schema.table" in Postgres, "table" in ClickHouse. */
  table: string;
  rows: number;
}

export interface DatabaseFigures {
  database: string;
  tables: TableFigures[];
}

export interface BucketFigures {
  bucket: string;
  /** Current objects (latest versions that are not delete markers). */
  objects: number;
  /** Every object version, current or not, delete markers excepted. */
  versions: number;
  deleteMarkers: number;
  /** Bytes over every version. */
  bytes: number;
}

/** The real figures of every target, read at plan time and again to verify. */
export interface DemoFigures {
  kafka?: KafkaFigures;
  postgres?: DatabaseFigures[];
  clickhouse?: DatabaseFigures[];
  objectStore?: BucketFigures[];
}

/** The plan, which is also the dry run: the guard's findings, every target with its figures. */
export interface DemoResetPlan {
  environment: string;
  /** Components the reset wipes (configured, minus kept). */
  components: Component[];
  kept: Component[];
  markers: MarkerCheck[];
  figures: DemoFigures;
  reseed: Reseed;
  /** The golden backup the wiped components are reloaded from, checked at plan; absent for reseed "empty". */
  golden?: GoldenReseed;
  /** "sha256:..." over everything above: the same platform state (and golden backup) gives the same hash. */
  hash: string;
  /** One line per destructive action, for the person who confirms. */
  actions: string[];
}

export type Reseed = 'empty' | { backup: string };

/** Where the golden backup's id came from: refusals name it. */
export type ReseedField = 'input.reseed.backup' | 'demoReset.goldenBackupId';

/** The golden backup's figures, read from its manifest: what the demo must equal after the reseed. */
export interface GoldenFigures {
  postgres: { database: string; tables: TableFigures[]; checksums: number }[];
  clickhouse: { database: string; tables: (TableFigures & { partitions: number })[] }[];
  kafka: { topic: string; partitions: { partition: number; messages: number }[] }[];
  objectStore: { bucket: string; objects: number; bytes: number }[];
}

/**
 * The reseed from a golden backup: the restore's own plan of it (stored in the backup bucket, by
 * reference, as a restore's), loading every piece into the demo's own names, and its figures.
 */
export interface GoldenReseed {
  backupId: string;
  field: ReseedField;
  /** Id of the key that signed its manifest (unsigned golden backups are refused). */
  manifestKeyId: string;
  consistencyPoint: string;
  figures: GoldenFigures;
  /** The restore steps the reseed runs, in order (the ClickHouse marker table is not among them: the demo keeps its own). */
  tasks: RestoreTaskHandle[];
  plan: StoredPlanRef;
}

/** One row of the report's table (the old runbook's table). */
export interface DemoResetRow {
  component: Component;
  /** "kafka topic orders", "postgres shop.public.orders", "bucket platform-data". */
  target: string;
  /** "purge messages", "truncate", "delete every version", "kept", "would purge messages"... */
  action: string;
  before: string;
  after: string;
  kept: boolean;
}

export interface DemoResetReport {
  workflowId: string;
  runId: string;
  environment: string;
  dryRun: boolean;
  forced: boolean;
  requestedBy: string;
  startedAt: string;
  finishedAt: string;
  planHash: string;
  reseed: Reseed;
  markers: MarkerCheck[];
  confirmation?: ApprovalRecord;
  rows: DemoResetRow[];
  /** Every figure zero after the wipe (or equal to the golden backup), per the verification. */
  verified: boolean;
  verification: string[];
  /** The reseed's restore steps and their checks against the golden manifest. */
  reseedSteps?: RestoreStepResult[];
  reseedChecks?: VerifyResult[];
  phaseDurationsMs: Record<string, number>;
  reportKey: string;
}
