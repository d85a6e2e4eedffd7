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

/** What a backup activity returns: the pieces it wrote, and whether it found them already complete. */
export interface ComponentResult {
  component: Component;
  unit: string;
  pieces: BackupPiece[];
  /** True when a retried activity found its own complete work instead of redoing it. */
  resumed: boolean;
}

export interface SkippedComponent {
  component: Component;
  reason: string;
}
