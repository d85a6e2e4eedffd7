import { DeleteObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import { backupIdTime } from '../../contracts/backupId';
import type { BackupManifest, RetentionReport } from '../../contracts/backupTypes';
import { manifestKey } from './manifest';
import { backupPrefix, getJson, headObject, listBackupIds, listKeys } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';
import type { BucketListing } from '../objectStore/backup';
import { selectRetention, type BackupEntry } from './retentionPolicy';

export function createBackupRetentionActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    /**
     * Applies the retention policy to the backup bucket. Deletes a backup's manifest first, so a
     * half-deleted backup is never taken for a complete one, and never deletes an object that a
     * kept backup references (an unchanged bucket object stored once, in an earlier backup).
     */
    async applyRetention({ currentBackupId }: { currentBackupId: string }): Promise<RetentionReport> {
      const s3 = connections.s3(120_000);
      try {
        const entries: BackupEntry[] = [];
        for (const id of await listBackupIds(s3, bucket)) {
          const startedAt = backupIdTime(id)!;
          const current = id === currentBackupId;
          const complete = current || (await headObject(s3, bucket, manifestKey(id))) !== undefined;
          entries.push({ id, startedAt, complete, current });
        }
        const policy = config.backup.retention;
        const decision = selectRetention(entries, policy, new Date());
        // The running backup is complete (its manifest was just written) and the newest, so the
        // policy keeps it; this guards against a clock far off from the id's time.
        decision.delete = decision.delete.filter((d) => d.id !== currentBackupId);

        const protectedKeys = await referencedKeys(s3, decision.keep.map((k) => k.id));
        const report: RetentionReport = { policy, kept: decision.keep, deleted: [], protectedObjects: 0 };
        for (const victim of decision.delete) {
          const prefix = backupPrefix(victim.id);
          await deleteKeys(s3, [manifestKey(victim.id)]);
          const keys = (await listKeys(s3, bucket, prefix)).filter((k) => {
            const keep = protectedKeys.has(k);
            if (keep) report.protectedObjects++;
            return !keep;
          });
          await deleteKeys(s3, keys);
          report.deleted.push({ id: victim.id, reason: victim.reason, objects: keys.length });
        }
        return report;
      } finally {
        s3.destroy();
      }

      async function deleteKeys(client: S3Client, keys: string[]): Promise<void> {
        for (let i = 0; i < keys.length; i += 1000) {
          const batch = keys.slice(i, i + 1000);
          const result = await client.send(
            new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          );
          if (result.Errors?.length) {
            throw new Error(`could not delete ${result.Errors.length} object(s), e.g. ${result.Errors[0]?.Key}: ${result.Errors[0]?.Message}`);
          }
        }
      }
    },
  };

  /** Keys outside their own folder that kept backups point at. */
  async function referencedKeys(s3: S3Client, keptIds: string[]): Promise<Set<string>> {
    const keys = new Set<string>();
    for (const id of keptIds) {
      const manifest = await getJson<BackupManifest>(s3, bucket, manifestKey(id));
      for (const piece of manifest?.pieces ?? []) {
        if (piece.component !== 'objectStore') continue;
        const listing = await getJson<BucketListing>(s3, bucket, piece.key);
        for (const o of listing?.objects ?? []) if (o.referencedFrom) keys.add(o.storedAt);
      }
    }
    return keys;
  }
}
