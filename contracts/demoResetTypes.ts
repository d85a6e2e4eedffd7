/**
 * demoReset's plan, steps and report, shared by the workflow and its activities (types only:
 * workflow code imports this file).
 */
import type { ApprovalPolicy, ApprovalRecord } from './approvalTypes';
import type { Component } from './backupTypes';

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
  /** "sha256:..." over everything above: the same platform state gives the same hash. */
  hash: string;
  /** One line per destructive action, for the person who confirms. */
  actions: string[];
}

export type Reseed = 'empty' | { backup: string };

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
  phaseDurationsMs: Record<string, number>;
  reportKey: string;
}
