/**
 * Bucket expiry for compaction: objects under maintenance.buckets.expire prefixes older than their
 * keepDays. The plan counts them; the (approved) step deletes exactly those older than the
 * plan's cutoff, in pages, and checks none is left.
 */
import { DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { ExpireStep, PrefixPlan, StepResult } from '../../contracts/maintenanceTypes';
import { heartbeat } from '../common/heartbeat';
import type { ActivityDeps } from '../deps';

/** Calls `onPage` with each page of objects under `prefix` last modified before `cutoff`. */
async function forEachExpired(s3: S3Client, bucket: string, prefix: string, cutoff: Date, onPage: (objects: { key: string; size: number }[]) => Promise<void>): Promise<void> {
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    const expired = (page.Contents ?? []).filter((o) => o.Key && o.LastModified && o.LastModified < cutoff).map((o) => ({ key: o.Key!, size: o.Size ?? 0 }));
    if (expired.length) await onPage(expired);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

export function createObjectStoreExpiryActivities(deps: ActivityDeps) {
  const { config, connections } = deps;

  return {
    /** Objects and bytes that would expire under each configured prefix. Read-only. */
    async planObjectExpiry({ now }: { now: string }): Promise<PrefixPlan[]> {
      const s3 = connections.s3();
      try {
        const plans: PrefixPlan[] = [];
        for (const rule of config.maintenance.buckets.expire) {
          const bucket = rule.bucket ?? config.objectStore.backupBucket;
          const cutoff = new Date(new Date(now).getTime() - rule.keepDays * 86_400_000);
          let objects = 0;
          let bytes = 0;
          await forEachExpired(s3, bucket, rule.prefix, cutoff, async (page) => {
            objects += page.length;
            bytes += page.reduce((sum, o) => sum + o.size, 0);
          });
          plans.push({ bucket, prefix: rule.prefix, keepDays: rule.keepDays, cutoff: cutoff.toISOString(), objects, bytes });
        }
        return plans;
      } finally {
        s3.destroy();
      }
    },

    /** Deletes the objects under the prefix older than the approved cutoff. Idempotent: a retry deletes what is left. */
    async expireObjects({ step }: { step: ExpireStep }): Promise<StepResult> {
      const started = Date.now();
      const s3 = connections.s3();
      const cutoff = new Date(step.cutoff);
      let deleted = 0;
      let bytes = 0;
      try {
        await forEachExpired(s3, step.bucket, step.prefix, cutoff, async (page) => {
          const answer = await s3.send(new DeleteObjectsCommand({ Bucket: step.bucket, Delete: { Objects: page.map((o) => ({ Key: o.key })), Quiet: true } }));
          if (answer.Errors?.length) throw new Error(`deleting under s3://${step.bucket}/${step.prefix}: ${answer.Errors.length} object(s) refused, e.g. ${answer.Errors[0]!.Key}: ${answer.Errors[0]!.Message}`);
          deleted += page.length;
          bytes += page.reduce((sum, o) => sum + o.size, 0);
          heartbeat({ stepId: step.id, deleted });
        });
        let left = 0;
        await forEachExpired(s3, step.bucket, step.prefix, cutoff, async (page) => void (left += page.length));
        const verified = `${deleted} object(s) deleted; ${left} older than ${step.cutoff} left`;
        return {
          id: step.id,
          kind: step.kind,
          summary: step.summary,
          outcome: left === 0 ? (deleted === 0 ? 'already done' : 'done') : 'failed',
          reason: left === 0 ? undefined : `verification failed: ${verified}`,
          startedAt: new Date(started).toISOString(),
          before: { objects: step.objects, bytes: step.bytes },
          after: { objects: left },
          bytesReclaimed: bytes,
          verified,
          durationMs: Date.now() - started,
        };
      } finally {
        s3.destroy();
      }
    },
  };
}
