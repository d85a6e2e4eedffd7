import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  HeadBucketCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/activity';
import type { BackupPiece } from '../../contracts/backupTypes';
import { mapLimit } from '../../contracts/concurrency';
import type { RestoreStepResult, VerifyCheck, VerifyResult } from '../../contracts/restoreTypes';
import { getPieceJson, isNotFound } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';
import { heartbeat, throttledHeartbeat } from '../common/heartbeat';
import { listBucket, type BucketListing } from './backup';
import { isBucketOwnedBy, markBucketOwner } from './ownership';
import { Failure } from '../../contracts/failures';

export interface BucketRestoreRequest {
  bucket: string;
  target: string;
  listing: BackupPiece;
  /** The restore run: a bucket created beside its source is tagged as its own. */
  restoreId?: string;
}

const COPY_CONCURRENCY = 8;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function createObjectStoreRestoreActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const backupBucket = config.objectStore.backupBucket;

  /** Checked against the manifest's sha256 again: the plan checked it, but the bucket may have changed since. */
  async function readListing(s3: S3Client, piece: BackupPiece): Promise<BucketListing> {
    const listing = await getPieceJson<BucketListing>(s3, backupBucket, piece);
    if (!listing) throw ApplicationFailure.nonRetryable(`bucket listing ${piece.key} is missing from ${backupBucket}`, Failure.BackupIncomplete);
    return listing;
  }

  return {
    /**
     * Copies a bucket's backed-up objects back with server-side copies. Objects already in the
     * target with the backed-up ETag and size are left as they are (a retry continues where it
     * stopped); objects in the target that the backup does not list are left alone and counted.
     */
    async restoreBucket({ bucket, target, listing: piece, restoreId }: BucketRestoreRequest): Promise<RestoreStepResult> {
      if (!BUCKET_NAME.test(target) || target === backupBucket) {
        throw ApplicationFailure.nonRetryable(`restore target bucket ${JSON.stringify(target)} is not a valid bucket name, or is the backup bucket`, Failure.InvalidInput);
      }
      const started = Date.now();
      const s3 = connections.s3(300_000);
      try {
        const listing = await readListing(s3, piece);
        const notes: string[] = [];
        if (!(await bucketExists(s3, target))) {
          await s3.send(new CreateBucketCommand({ Bucket: target }));
          notes.push(`created bucket ${target}`);
        }
        // Tagged even when a retry finds the bucket created: the tag is what teardown trusts.
        if (target !== bucket && restoreId) await markBucketOwner(s3, target, restoreId);
        const present = new Map((await listBucket(s3, target)).map((o) => [o.key, o]));
        const progress = { copied: 0, unchanged: 0, bytes: 0 };
        const beat = throttledHeartbeat(() => progress);
        await mapLimit(listing.objects, COPY_CONCURRENCY, async (object) => {
          const now = present.get(object.key);
          if (now && now.etag === object.etag && now.size === object.size) {
            progress.unchanged++;
            return;
          }
          await s3.send(
            new CopyObjectCommand({
              Bucket: target,
              Key: object.key,
              CopySource: `${backupBucket}/${object.storedAt.split('/').map(encodeURIComponent).join('/')}`,
            }),
          );
          progress.copied++;
          progress.bytes += object.size;
          beat();
        });
        const listed = new Set(listing.objects.map((o) => o.key));
        const extra = [...present.keys()].filter((k) => !listed.has(k)).length;
        if (extra > 0) notes.push(`${extra} object(s) in ${target} that the backup does not list were left in place`);
        if (progress.unchanged > 0) notes.push(`${progress.unchanged} object(s) already matched the backup and were not copied`);
        return {
          component: 'objectStore',
          unit: `bucket ${bucket} -> ${target}`,
          bytes: progress.bytes,
          durationMs: Date.now() - started,
          notes,
        };
      } finally {
        s3.destroy();
      }
    },

    /** Every listed object is in the target with its size (and its ETag: CopyObject keeps a single-part ETag). */
    async verifyBucket({ target, listing: piece }: BucketRestoreRequest): Promise<VerifyResult> {
      const s3 = connections.s3(300_000);
      try {
        const listing = await readListing(s3, piece);
        const present = new Map((await listBucket(s3, target)).map((o) => [o.key, o]));
        const missing = listing.objects.filter((o) => !present.has(o.key));
        const wrongSize = listing.objects.filter((o) => present.has(o.key) && present.get(o.key)!.size !== o.size);
        const singlePart = listing.objects.filter((o) => !o.etag.includes('-') && present.has(o.key));
        const wrongEtag = singlePart.filter((o) => present.get(o.key)!.etag !== o.etag);
        const checks: VerifyCheck[] = [
          { name: `bucket ${target} objects present`, expected: listing.objects.length, actual: listing.objects.length - missing.length, ok: missing.length === 0 },
          { name: `bucket ${target} sizes match`, expected: 0, actual: wrongSize.length, ok: wrongSize.length === 0 },
          { name: `bucket ${target} ETags match (single-part objects)`, expected: 0, actual: wrongEtag.length, ok: wrongEtag.length === 0 },
        ];
        return { component: 'objectStore', unit: `bucket ${target}`, ok: checks.every((c) => c.ok), checks };
      } finally {
        s3.destroy();
      }
    },

    /**
     * Drill teardown: empties and deletes a scratch bucket, only when it carries the tag of the
     * restore run that `owner` names. Never a configured bucket or the backup bucket.
     */
    async deleteScratchBucket({ bucket, owner }: { bucket: string; owner: string }): Promise<{ deletedObjects: number }> {
      if (!BUCKET_NAME.test(bucket) || bucket === backupBucket || config.objectStore.buckets.includes(bucket)) {
        throw ApplicationFailure.nonRetryable(`refusing to delete bucket ${JSON.stringify(bucket)}: not a scratch bucket`, Failure.InvalidInput);
      }
      const s3 = connections.s3(300_000);
      try {
        if (!(await bucketExists(s3, bucket))) return { deletedObjects: 0 };
        if (!(await isBucketOwnedBy(s3, bucket, owner))) {
          throw ApplicationFailure.nonRetryable(`refusing to delete bucket ${bucket}: it does not carry the ballast-owner tag of ${owner}`, Failure.TargetRefused);
        }
        const keys = (await listBucket(s3, bucket)).map((o) => o.key);
        for (let at = 0; at < keys.length; at += 1000) {
          await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(at, at + 1000).map((Key) => ({ Key })) } }));
          heartbeat({ deleted: at });
        }
        await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
        return { deletedObjects: keys.length };
      } finally {
        s3.destroy();
      }
    },
  };
}

async function bucketExists(s3: S3Client, bucket: string): Promise<boolean> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
