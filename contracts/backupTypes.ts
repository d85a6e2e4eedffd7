/**
 * Types of backups, shared by the backup workflow and its activities (types only: workflow code
 * imports this file).
 */

export const COMPONENTS = ['postgres', 'clickhouse', 'kafka', 'objectStore'] as const;
export type Component = (typeof COMPONENTS)[number];

/** One object (or one server-side copy) of a backup, as the manifest records it. */
export interface BackupPiece {
  component: Component;
  /** What it holds, e.g. "shop", "analytics.events/202601", "orders", "platform-data/listing". */
  name: string;
  /** Object key in the backup bucket. */
  key: string;
  /** Bytes stored. */
  size: number;
  /** sha256 (hex) of the stored bytes, computed while streaming; absent for server-side copies. */
  sha256?: string;
  /** S3 ETag, recorded for server-side copies whose bytes ballast never sees. */
  etag?: string;
  rows?: number;
  messages?: number;
  /** When the data this piece holds was read: its contribution to the backup's consistency point. */
  snapshotAt: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** Set when an unchanged object was referenced in an earlier backup instead of copied again. */
  referencedFrom?: string;
  /** Free-form facts a restore needs (format, partition expression, offsets...). */
  details?: Record<string, unknown>;
}

/**
 * What a system's backup activity produces: the pieces it wrote, and whether it found them already
 * complete. Stored as the unit's piece list in the backup bucket; the workflow holds a StoredPieces.
 */
export interface ComponentResult {
  component: Component;
  unit: string;
  pieces: BackupPiece[];
  /** True when a retried activity found its own complete work instead of redoing it. */
  resumed: boolean;
}

/**
 * What a backup step returns to the workflow: where its piece list is stored, and its totals.
 * Pieces travel by reference: one table of a few thousand partitions would pass Temporal's
 * payload limit.
 */
export interface StoredPieces extends PieceListRef {
  component: Component;
  unit: string;
  pieces: number;
  bytes: number;
  rows: number;
  messages: number;
  /** True when a retried activity found its own complete work instead of redoing it. */
  resumed: boolean;
}

/** A stored piece list (a ComponentResult as JSON), and the sha256 of its bytes as written. */
export interface PieceListRef {
  key: string;
  sha256: string;
}

export interface SkippedComponent {
  component: Component;
  reason: string;
}

/** One unit of backup work: one activity call. */
export type BackupTask =
  | { component: 'postgres'; kind: 'postgresDatabase'; database: string }
  | {
      component: 'clickhouse';
      kind: 'clickhouseTable';
      database: string;
      table: string;
      /** Only these partition ids (input.clickhousePartitions); every partition when absent. */
      partitions?: string[];
    }
  | { component: 'kafka'; kind: 'kafkaMetadata' }
  | { component: 'kafka'; kind: 'kafkaTopic'; topic: string }
  | { component: 'objectStore'; kind: 'bucket'; bucket: string };

/** The workflow's validated request, passed to the planning activity. */
export interface BackupPlanRequest {
  components: Component[];
  skip: SkippedComponent[];
  postgresDatabases?: string[];
  clickhouseTables?: string[];
  /** "database.table" to the partition ids to back up of it; the table's other partitions are left out. */
  clickhousePartitions?: Record<string, string[]>;
  kafkaDataTopics?: string[];
  buckets?: string[];
}

export interface BackupPlan {
  backupBucket: string;
  concurrency: number;
  environment: string;
  tasks: BackupTask[];
  previousBackupId?: string;
  /**
   * Components the input narrowed to fewer databases, tables, topics or buckets than the config
   * lists: the backup holds them only in part. Absent in plans recorded before it existed.
   */
  narrowed?: SkippedComponent[];
}

export interface ManifestRequest {
  backupId: string;
  workflowId: string;
  runId: string;
  environment: string;
  startedAt: string;
  /** Every backup step's piece list: the manifest reads them, and refuses one changed since. */
  pieceLists: PieceListRef[];
  skipped: SkippedComponent[];
  serverVersions: Record<string, string>;
  previousBackupId?: string;
  /** From the plan: components held only in part. */
  narrowed?: SkippedComponent[];
}

export interface ComponentSummary {
  component: Component;
  pieces: number;
  bytes: number;
  rows: number;
  messages: number;
  /** Summed activity time of the component's pieces (they may have run in parallel). */
  durationMs: number;
  startedAt: string;
  finishedAt: string;
}

/**
 * The worker's HMAC-SHA256 (backup.manifestKey) over the manifest's canonical JSON without this
 * field: see activities/backup/manifestSignature.ts.
 */
export interface ManifestSignature {
  algorithm: 'HMAC-SHA256';
  /** The first 8 hex digits of sha256(key): names the key without revealing it, for rotation. */
  keyId: string;
  /** 64 hex digits. */
  value: string;
}

/** manifest.json: written last; a backup folder without one is incomplete and never restored from. */
export interface BackupManifest {
  formatVersion: 1;
  backupId: string;
  environment: string;
  workflowId: string;
  runId: string;
  startedAt: string;
  finishedAt: string;
  /** The earliest moment any piece's data was read: data written after it may be missing (RPO). */
  consistencyPoint: string;
  serverVersions: Record<string, string>;
  components: ComponentSummary[];
  skipped: SkippedComponent[];
  previousBackupId?: string;
  totals: { pieces: number; bytes: number; rows: number; messages: number };
  pieces: BackupPiece[];
  /**
   * Every configured component backed up in full, nothing skipped. Only complete backups count
   * for "latest" and for retention's daily, weekly and monthly slots. Absent in manifests written
   * before it existed: those count as complete only when they skip nothing and hold every
   * configured component (activities/backup/completeness.ts).
   */
  complete?: boolean;
  /** What a partial backup lacks, and why; empty when complete. */
  lacks?: SkippedComponent[];
  /** Absent when the worker had no backup.manifestKey, and in manifests written before it existed. */
  signature?: ManifestSignature;
}

/** What writeManifest returns to the workflow: the manifest without its pieces, which stay in the bucket. */
export type ManifestSummary = Omit<BackupManifest, 'pieces'>;

export interface RetentionReport {
  policy: { daily: number; weekly: number; monthly: number; partial: number; incompleteGraceHours: number };
  kept: { id: string; reasons: string[] }[];
  deleted: { id: string; reason: string; objects: number }[];
  /** Objects left in deleted folders because a kept backup references them. */
  protectedObjects: number;
}
