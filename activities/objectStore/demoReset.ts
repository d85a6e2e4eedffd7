import { DeleteObjectsCommand, GetBucketTaggingCommand, ListObjectVersionsCommand, PutBucketTaggingCommand, type S3Client, type Tag } from '@aws-sdk/client-s3';
import type { BucketFigures } from '../../contracts/demoResetTypes';

/**
 * A demo bucket carries the tag `ballast-environment=demo`, beside any other tags it has (the
 * ownership tag, say): the demo-marker command adds it, and a demo reset refuses a bucket without it.
 */
export const DEMO_TAG = { Key: 'ballast-environment', Value: 'demo' } as const;

async function bucketTags(s3: S3Client, bucket: string): Promise<Tag[]> {
  try {
    return (await s3.send(new GetBucketTaggingCommand({ Bucket: bucket }))).TagSet ?? [];
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchTagSet' || (err as { Code?: string }).Code === 'NoSuchTagSet') return [];
    throw err;
  }
}

export async function markDemoBucket(s3: S3Client, bucket: string): Promise<void> {
  const tags = (await bucketTags(s3, bucket)).filter((t) => t.Key !== DEMO_TAG.Key);
  await s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [...tags, { ...DEMO_TAG }] } }));
}

export async function hasDemoMarker(s3: S3Client, bucket: string): Promise<boolean> {
  return (await bucketTags(s3, bucket)).some((t) => t.Key === DEMO_TAG.Key && t.Value === DEMO_TAG.Value);
}

interface VersionRef {
  Key: string;
  VersionId: string;
}

/** Every version and delete marker of the bucket, page by page (an unversioned bucket's objects have version "null"). */
async function* versionPages(s3: S3Client, bucket: string): AsyncGenerator<{ versions: (VersionRef & { size: number; latest: boolean })[]; markers: VersionRef[] }> {
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  do {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionIdMarker }));
    yield {
      versions: (page.Versions ?? []).map((v) => ({ Key: v.Key!, VersionId: v.VersionId ?? 'null', size: v.Size ?? 0, latest: v.IsLatest ?? false })),
      markers: (page.DeleteMarkers ?? []).map((m) => ({ Key: m.Key!, VersionId: m.VersionId ?? 'null' })),
    };
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    versionIdMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
  } while (keyMarker !== undefined);
}

export async function bucketFigures(s3: S3Client, bucket: string): Promise<BucketFigures> {
  const figures: BucketFigures = { bucket, objects: 0, versions: 0, deleteMarkers: 0, bytes: 0 };
  for await (const page of versionPages(s3, bucket)) {
    figures.versions += page.versions.length;
    figures.objects += page.versions.filter((v) => v.latest).length;
    figures.bytes += page.versions.reduce((n, v) => n + v.size, 0);
    figures.deleteMarkers += page.markers.length;
  }
  return figures;
}

/**
 * Deletes every object version and every delete marker, by version id: a plain delete (`rm -r`)
 * on a versioned bucket only adds delete markers. The bucket, its policy, versioning and tags
 * stay. Lists again until nothing is left, so a retry, or versions written meanwhile, end empty too.
 */
export async function emptyBucket(s3: S3Client, bucket: string, progress: (deleted: number) => void): Promise<number> {
  let deleted = 0;
  for (;;) {
    let found = 0;
    for await (const page of versionPages(s3, bucket)) {
      const refs = [...page.versions.map(({ Key, VersionId }) => ({ Key, VersionId })), ...page.markers];
      for (let i = 0; i < refs.length; i += 1000) {
        const batch = refs.slice(i, i + 1000);
        const result = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
        const errors = result.Errors ?? [];
        if (errors.length > 0) throw new Error(`deleting versions in bucket ${bucket} failed: ${errors.slice(0, 3).map((e) => `${e.Key}@${e.VersionId}: ${e.Code} ${e.Message}`).join('; ')}`);
        deleted += batch.length;
        progress(deleted);
      }
      found += refs.length;
    }
    if (found === 0) return deleted;
  }
}
