import { CopyObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { heartbeat } from '../common/heartbeat';
import type { BackupPiece, ComponentResult } from '../../contracts/backupTypes';
import { backupKey, backupPrefix, findCompletePiece, getJson, headObject, markPieceComplete, putJson } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';
import { mapLimit } from '../../contracts/concurrency';
import { Failure } from '../../contracts/failures';

export interface BucketBackupRequest {
  backupId: string;
  bucket: string;
  /** The newest complete backup before this one: objects unchanged since it are referenced, not copied. */
  previousBackupId?: string;
}

/** One source object as the bucket's listing records it. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  /** Where its bytes are kept in the backup bucket: this backup's copy, or an earlier backup's. */
  storedAt: string;
  /** The backup that holds the bytes, when it is not this one. */
  referencedFrom?: string;
}

export interface BucketListing {
  bucket: string;
  backupId: string;
  listedAt: string;
  objects: ListedObject[];
}

// A single CopyObject handles objects up to 5 GiB; larger ones would need a multipart copy.
const MAX_SINGLE_COPY = 5 * 1024 ** 3;
const COPY_CONCURRENCY = 8;

export function listingKey(backupId: string, bucket: string): string {
  return backupKey(backupId, 'objects', bucket, 'listing.json');
}

export function createObjectStoreBackupActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const backupBucket = config.objectStore.backupBucket;

  return {
    /**
     * Copies a bucket into the backup with server-side copies (the bytes never pass through the
     * worker), and writes a listing of keys, sizes and ETags. Objects whose ETag is unchanged since
     * the previous complete backup are referenced there instead of copied again.
     */
    async backupBucket({ backupId, bucket, previousBackupId }: BucketBackupRequest): Promise<ComponentResult> {
      const s3 = connections.s3(300_000);
      const unit = `bucket ${bucket}`;
      const key = listingKey(backupId, bucket);
      try {
        const earlier = await findCompletePiece(s3, backupBucket, key);
        if (earlier) return { component: 'objectStore', unit, pieces: [earlier], resumed: true };

        const started = new Date();
        const source = await listBucket(s3, bucket);
        const previous = previousBackupId
          ? await getJson<BucketListing>(s3, backupBucket, listingKey(previousBackupId, bucket))
          : undefined;
        const before = new Map((previous?.objects ?? []).map((o) => [o.key, o]));
        const ctx = Context.current();
        const dataPrefix = `${backupPrefix(backupId)}objects/${encodeURIComponent(bucket)}/data/`;

        let copied = 0;
        let referenced = 0;
        let bytesCopied = 0;
        const objects = await mapLimit(source, COPY_CONCURRENCY, async (object): Promise<ListedObject> => {
          const old = before.get(object.key);
          if (old && old.etag === object.etag && old.size === object.size) {
            referenced++;
            return { ...object, storedAt: old.storedAt, referencedFrom: old.referencedFrom ?? previousBackupId };
          }
          if (object.size > MAX_SINGLE_COPY) {
            throw ApplicationFailure.nonRetryable(
              `object ${bucket}/${object.key} is ${object.size} bytes: larger than the 5 GiB single-copy limit, which ballast does not support yet`,
              Failure.ObjectTooLarge,
            );
          }
          const destination = `${dataPrefix}${object.key}`;
          // A retried attempt finds the copies it already made.
          const existing = await headObject(s3, backupBucket, destination);
          if (!existing || existing.etag !== object.etag) {
            await s3.send(
              new CopyObjectCommand({
                Bucket: backupBucket,
                Key: destination,
                CopySource: `${bucket}/${object.key.split('/').map(encodeURIComponent).join('/')}`,
                CopySourceIfMatch: object.etag,
              }),
            );
          }
          copied++;
          bytesCopied += object.size;
          heartbeat({ copied, referenced }, ctx);
          return { ...object, storedAt: destination };
        });

        const listing: BucketListing = { bucket, backupId, listedAt: started.toISOString(), objects };
        const stored = await putJson(s3, backupBucket, key, listing);
        const finished = new Date();
        const piece: BackupPiece = {
          component: 'objectStore',
          name: `${bucket}/listing`,
          key,
          size: stored.size,
          sha256: stored.sha256,
          snapshotAt: started.toISOString(),
          startedAt: started.toISOString(),
          finishedAt: finished.toISOString(),
          durationMs: finished.getTime() - started.getTime(),
          details: {
            bucket,
            objects: objects.length,
            bytes: objects.reduce((sum, o) => sum + o.size, 0),
            copied,
            bytesCopied,
            referenced,
            referencedFrom: previousBackupId ?? null,
          },
        };
        await markPieceComplete(s3, backupBucket, piece);
        return { component: 'objectStore', unit, pieces: [piece], resumed: false };
      } finally {
        s3.destroy();
      }
    },
  };
}

export async function listBucket(s3: S3Client, bucket: string): Promise<Omit<ListedObject, 'storedAt'>[]> {
  const objects: Omit<ListedObject, 'storedAt'>[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      objects.push({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag ?? '' });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}
