import { createHash } from 'node:crypto';
import { GetBucketTaggingCommand, PutBucketTaggingCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * A bucket a drill or a restore beside production creates carries its owner (the restore run) as
 * a bucket tag, so that teardown deletes only its own buckets and a plan refuses a name that is
 * taken by anyone else.
 */
const OWNER_TAG = 'ballast-owner';
// S3's rule for tag values; a workflow id outside it is recorded by its hash.
const TAG_VALUE = /^[A-Za-z0-9 +\-=._:/@]{1,256}$/;

function tagValue(owner: string): string {
  return TAG_VALUE.test(owner) ? owner : `sha256:${createHash('sha256').update(owner).digest('hex')}`;
}

export async function markBucketOwner(s3: S3Client, bucket: string, owner: string): Promise<void> {
  await s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [{ Key: OWNER_TAG, Value: tagValue(owner) }] } }));
}

/** Whether the bucket carries `owner`'s tag; a bucket without tags is no one's. */
export async function isBucketOwnedBy(s3: S3Client, bucket: string, owner: string): Promise<boolean> {
  return (await bucketOwnerTag(s3, bucket)) === tagValue(owner);
}

export async function bucketOwnerTag(s3: S3Client, bucket: string): Promise<string | undefined> {
  try {
    const tags = await s3.send(new GetBucketTaggingCommand({ Bucket: bucket }));
    return tags.TagSet?.find((t) => t.Key === OWNER_TAG)?.Value;
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchTagSet' || (err as { Code?: string }).Code === 'NoSuchTagSet') return undefined;
    throw err;
  }
}
