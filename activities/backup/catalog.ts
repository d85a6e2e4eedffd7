/**
 * The backups in the bucket as a person asks about them (the CLI's `backups` and `status`, the
 * worker's RPO metric): complete, partial or incomplete, size, components, age. Read-only; a
 * manifest is summarised, not verified (a restore's plan verifies it before anything is touched).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { BackupManifest, Component, SkippedComponent } from '../../contracts/backupTypes';
import { backupIdTime } from '../../contracts/backupId';
import { backupPrefix, getJson, listBackupIds, listSizes } from '../storage/backupObjects';
import { manifestCompleteness } from './completeness';

export interface BackupEntry {
  backupId: string;
  /** incomplete: no manifest (running, or failed); unreadable: a manifest that is not JSON of the expected shape. */
  state: 'complete' | 'partial' | 'incomplete' | 'unreadable';
  /** The manifest's total, or what the folder holds when it has none. */
  bytes: number;
  components: Component[];
  lacks: SkippedComponent[];
  /** When the backup began: the manifest's, else the time in its id. */
  startedAt: string;
  finishedAt?: string;
  /** The RPO reference: data written after it may be missing from this backup. */
  consistencyPoint?: string;
  signed: boolean;
}

export async function readBackupEntry(s3: S3Client, bucket: string, backupId: string, configured: readonly Component[]): Promise<{ entry: BackupEntry; manifest?: BackupManifest }> {
  const raw = await getJson<BackupManifest>(s3, bucket, `${backupPrefix(backupId)}manifest.json`);
  const idTime = backupIdTime(backupId)?.toISOString() ?? '';
  if (!raw) {
    const sizes = await listSizes(s3, bucket, backupPrefix(backupId));
    const bytes = [...sizes.values()].reduce((a, b) => a + b, 0);
    return { entry: { backupId, state: 'incomplete', bytes, components: [], lacks: [], startedAt: idTime, signed: false } };
  }
  if (!Array.isArray(raw.pieces) || !Array.isArray(raw.skipped) || typeof raw.totals !== 'object') {
    return { entry: { backupId, state: 'unreadable', bytes: 0, components: [], lacks: [], startedAt: idTime, signed: false } };
  }
  const { complete, lacks } = manifestCompleteness(raw, configured);
  const components = [...new Set(raw.pieces.map((p) => p.component))];
  return {
    manifest: raw,
    entry: {
      backupId,
      state: complete ? 'complete' : 'partial',
      bytes: raw.totals.bytes,
      components,
      lacks,
      startedAt: raw.startedAt ?? idTime,
      finishedAt: raw.finishedAt,
      consistencyPoint: raw.consistencyPoint,
      signed: raw.signature !== undefined,
    },
  };
}

/** Every backup folder, newest first. */
export async function listBackupEntries(s3: S3Client, bucket: string, configured: readonly Component[]): Promise<BackupEntry[]> {
  const ids = (await listBackupIds(s3, bucket)).reverse();
  const entries: BackupEntry[] = [];
  for (const id of ids) entries.push((await readBackupEntry(s3, bucket, id, configured)).entry);
  return entries;
}

/** The newest complete backup, reading manifests newest first until one is complete. */
export async function newestCompleteBackup(s3: S3Client, bucket: string, configured: readonly Component[]): Promise<BackupEntry | undefined> {
  for (const id of (await listBackupIds(s3, bucket)).reverse()) {
    const { entry } = await readBackupEntry(s3, bucket, id, configured);
    if (entry.state === 'complete') return entry;
  }
  return undefined;
}
