import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/activity';
import type { BackupPiece } from '../../contracts/backupTypes';
import { backupIdProblem, backupIdTime } from '../../contracts/backupId';
import { Failure } from '../../contracts/failures';
import { uploadObjectFromFd, uploadObjectStream, type StreamedObject, type UploadWatch } from './objectUpload';

export type { StreamedObject, UploadWatch } from './objectUpload';

/**
 * Every object of a backup lives under this folder of the backup bucket. The id goes into keys as
 * is, so it must be one plain key segment: a bad one would write outside the backup's folder.
 */
export function backupPrefix(backupId: string): string {
  const problem = backupIdProblem(backupId);
  // Non-retryable: a bad id stays bad however often the activity is retried.
  if (problem) throw ApplicationFailure.nonRetryable(problem, Failure.InvalidInput);
  return `backups/${backupId}/`;
}

export function backupKey(backupId: string, ...parts: string[]): string {
  return `${backupPrefix(backupId)}${parts.map(encodeKeyPart).join('/')}`;
}

/** Keeps keys readable while making sure no name can climb out of its folder. */
function encodeKeyPart(part: string): string {
  if (part === '' || part === '.' || part === '..') throw new Error(`invalid key part ${JSON.stringify(part)}`);
  return part.replace(/[^A-Za-z0-9._=-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** A piece's completion marker: written only after its data object is complete. */
export function markerKey(dataKey: string): string {
  const at = dataKey.indexOf('/', 'backups/'.length);
  return `${dataKey.slice(0, at)}/.pieces/${dataKey.slice(at + 1)}.json`;
}

/**
 * Streams `source` into one object, computing size and sha256 on the way; multipart for large
 * data, never buffered whole. `watch` reports progress for heartbeats and checks the bytes.
 */
export async function uploadStream(s3: S3Client, bucket: string, key: string, source: Readable, watch?: UploadWatch): Promise<StreamedObject> {
  try {
    return await uploadObjectStream(s3, bucket, key, source, watch);
  } catch (err) {
    // The upload aborts its own multipart upload; this also catches one whose creation was
    // answered but never heard of, so no part lingers.
    await abortStaleUploads(s3, bucket, key).catch(() => undefined);
    throw err;
  }
}

/** uploadObjectFromFd, and no multipart upload left behind when it fails (see uploadStream). */
export async function uploadFromFd(s3: S3Client, bucket: string, key: string, fd: number, ended: Promise<void>, watch?: UploadWatch): Promise<StreamedObject> {
  try {
    return await uploadObjectFromFd(s3, bucket, key, fd, ended, watch);
  } catch (err) {
    await abortStaleUploads(s3, bucket, key).catch(() => undefined);
    throw err;
  }
}

export async function putJson(s3: S3Client, bucket: string, key: string, value: unknown): Promise<StreamedObject> {
  const body = Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' }));
  return { size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
}

export async function getJson<T>(s3: S3Client, bucket: string, key: string): Promise<T | undefined> {
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse(await object.Body!.transformToString()) as T;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * A JSON piece (a bucket listing, Kafka metadata) read whole and checked against what the manifest
 * records, its size and sha256, before anything it says is followed; undefined when it is gone.
 */
export async function getPieceJson<T>(s3: S3Client, bucket: string, piece: BackupPiece): Promise<T | undefined> {
  let bytes: Buffer;
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: piece.key }));
    bytes = Buffer.from(await object.Body!.transformToByteArray());
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (bytes.length !== piece.size || (piece.sha256 !== undefined && sha256 !== piece.sha256)) {
    throw ApplicationFailure.nonRetryable(
      `backup object damaged: ${piece.key} (${bytes.length} bytes, sha256 ${sha256.slice(0, 12)}…) is not what the manifest records (${piece.size} bytes, sha256 ${piece.sha256?.slice(0, 12) ?? 'none'}…)`,
      Failure.BackupCorrupt,
    );
  }
  return JSON.parse(bytes.toString('utf8')) as T;
}

/**
 * A JSON object read whole, with the sha256 of its bytes: for objects a workflow holds by
 * reference (a piece list, a restore plan), whose reader refuses them when that sha256 is not the
 * one recorded when they were written. Undefined when it is gone.
 */
export async function getJsonWithSha256<T>(s3: S3Client, bucket: string, key: string): Promise<{ value: T; sha256: string } | undefined> {
  let bytes: Buffer;
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    bytes = Buffer.from(await object.Body!.transformToByteArray());
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  return { value: JSON.parse(bytes.toString('utf8')) as T, sha256: createHash('sha256').update(bytes).digest('hex') };
}

export async function headObject(s3: S3Client, bucket: string, key: string): Promise<{ size: number; etag?: string } | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { size: head.ContentLength ?? 0, etag: head.ETag };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** sha256 (hex) of an object's bytes, streamed: the object is never held whole. */
export async function objectSha256(s3: S3Client, bucket: string, key: string): Promise<string> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of object.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/**
 * The piece recorded by an earlier attempt of the same activity, if its data object is still there
 * with the recorded size: a retried activity then returns it instead of writing it again.
 */
export async function findCompletePiece(s3: S3Client, bucket: string, dataKey: string): Promise<BackupPiece | undefined> {
  const piece = await getJson<BackupPiece>(s3, bucket, markerKey(dataKey));
  if (!piece) return undefined;
  const head = await headObject(s3, bucket, dataKey);
  return head && head.size === piece.size ? piece : undefined;
}

export async function markPieceComplete(s3: S3Client, bucket: string, piece: BackupPiece): Promise<void> {
  await putJson(s3, bucket, markerKey(piece.key), piece);
}

/**
 * Aborts multipart uploads left by an attempt that died (a killed worker cannot abort its own),
 * so their parts do not linger in the bucket.
 */
export async function abortStaleUploads(s3: S3Client, bucket: string, key: string): Promise<number> {
  const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  const stale = (listed.Uploads ?? []).filter((u) => u.Key === key && u.UploadId);
  for (const upload of stale) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload.UploadId }));
  }
  return stale.length;
}

/** Whether anything (data or a completion marker) is stored under a backup folder's `dataPrefix`. */
export async function hasObjectsUnder(s3: S3Client, bucket: string, dataPrefix: string): Promise<boolean> {
  const markers = markerKey(`${dataPrefix}x`).slice(0, -'x.json'.length);
  const pages = await Promise.all(
    [dataPrefix, markers].map((prefix) => s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 }))),
  );
  return pages.some((page) => (page.KeyCount ?? page.Contents?.length ?? 0) > 0);
}

/** Ids of the backup folders in the bucket, oldest first; folders not named like a backup are ignored. */
export async function listBackupIds(s3: S3Client, bucket: string): Promise<string[]> {
  const ids: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'backups/', Delimiter: '/', ContinuationToken: token }));
    for (const p of page.CommonPrefixes ?? []) {
      const id = p.Prefix!.slice('backups/'.length, -1);
      if (backupIdTime(id)) ids.push(id);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return ids.sort();
}

export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Every object under `prefix` with its size: one request per 1,000 objects, where HEADs take one each. */
export async function listSizes(s3: S3Client, bucket: string, prefix: string, onPage: () => void = () => undefined): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) sizes.set(o.Key!, o.Size ?? 0);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    onPage();
  } while (token);
  return sizes;
}
