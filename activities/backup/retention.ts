import { DeleteObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import { backupIdTime } from '../../contracts/backupId';
import type { BackupManifest, RetentionReport } from '../../contracts/backupTypes';
import { manifestKey } from './manifest';
import { backupPrefix, getJson, listBackupIds, listKeys } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';
import { backupReadLeasePrefix, holderRunningInTemporal, liveLeases } from '../storage/leases';
import type { BucketListing } from '../objectStore/backup';
import { selectRetention, type BackupEntry, type BackupState } from './retentionPolicy';
import { checkManifest, ManifestRefusal } from './manifestCheck';
import { configuredComponents, manifestCompleteness } from './completeness';

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
        const manifests = new Map<string, BackupManifest>();
        for (const id of await listBackupIds(s3, bucket)) {
          const entry = await classify(s3, id);
          if (entry.manifest) manifests.set(id, entry.manifest);
          entries.push({ id, startedAt: backupIdTime(id)!, state: entry.state, problem: entry.problem, current: id === currentBackupId });
        }
        const policy = config.backup.retention;
        const decision = selectRetention(entries, policy, new Date());
        // The running backup has just written its manifest and is the newest, so the policy keeps
        // it; this guards against a clock far off from the id's time.
        decision.delete = decision.delete.filter((d) => d.id !== currentBackupId);

        // A backup a restore or drill is reading is kept until it is done, whatever the policy says.
        for (const victim of [...decision.delete]) {
          const readers = await liveLeases(s3, bucket, backupReadLeasePrefix(victim.id), holderRunningInTemporal);
          if (readers.length === 0) continue;
          decision.delete = decision.delete.filter((d) => d.id !== victim.id);
          decision.keep.push({ id: victim.id, reasons: readers.map((r) => `being read by ${r.workflowId} (${r.purpose})`) });
        }
        const protectedKeys = await referencedKeys(s3, decision.keep.map((k) => manifests.get(k.id)));
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

  /**
   * Complete or partial as its manifest says, when the manifest passes its check (signed by one of
   * this worker's keys, or unsigned: written before manifests were signed, or without a key).
   */
  async function classify(s3: S3Client, id: string): Promise<{ state: BackupState; manifest?: BackupManifest; problem?: string }> {
    let raw: unknown;
    try {
      raw = await getJson<unknown>(s3, bucket, manifestKey(id));
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      return { state: 'untrusted', problem: `manifest.json is not JSON: ${err.message}` };
    }
    if (raw === undefined) return { state: 'incomplete' };
    try {
      const { manifest } = checkManifest(raw, { backupId: id, keys: connections.manifestVerifyingKeys, allowUnsigned: true });
      return { state: manifestCompleteness(manifest, configuredComponents(config)).complete ? 'complete' : 'partial', manifest };
    } catch (err) {
      if (!(err instanceof ManifestRefusal)) throw err;
      return { state: 'untrusted', problem: err.message, manifest: raw as BackupManifest };
    }
  }

  /** Keys outside their own folder that kept backups point at. */
  async function referencedKeys(s3: S3Client, kept: (BackupManifest | undefined)[]): Promise<Set<string>> {
    const keys = new Set<string>();
    for (const manifest of kept) {
      // An untrusted manifest is kept as found: its pieces are only read, never relied on.
      for (const piece of Array.isArray(manifest?.pieces) ? manifest.pieces : []) {
        if (piece?.component !== 'objectStore' || typeof piece.key !== 'string') continue;
        const listing = await getJson<BucketListing>(s3, bucket, piece.key).catch((err: unknown) => {
          if (err instanceof SyntaxError) return undefined;
          throw err;
        });
        for (const o of Array.isArray(listing?.objects) ? listing.objects : []) if (o.referencedFrom) keys.add(o.storedAt);
      }
    }
    return keys;
  }
}
