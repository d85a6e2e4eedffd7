/**
 * Leases in the backup bucket: small objects under leases/ that say which run holds what. They
 * keep retention from deleting a backup a restore reads, and two runs from restarting one
 * cluster's brokers or restoring into one target at once.
 *
 * A lease is created with a conditional write (If-None-Match: *), so of two runs racing for it
 * exactly one wins. It names its holder run; a lease whose holder is no longer running is stale
 * (a worker died before releasing it) and is taken over, so a crash never locks a target for ever.
 */
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { getJson, listKeys } from './backupObjects';

export interface LeaseHolder {
  workflowId: string;
  runId: string;
  /** What the holder does, for the person refused: "restore into shop". */
  purpose: string;
}

interface LeaseObject extends LeaseHolder {
  acquiredAt: string;
}

/** Whether the run a lease names still runs (the caller asks Temporal). */
export type HolderRunning = (holder: LeaseHolder) => Promise<boolean>;

export function leaseKey(...parts: string[]): string {
  return ['leases', ...parts.map((p) => encodeURIComponent(p))].join('/');
}

/** The lease a reader of a backup holds: retention keeps a backup while any such lease is live. */
export function backupReadLeaseKey(backupId: string, workflowId: string): string {
  return leaseKey('backups', backupId, workflowId);
}

export function backupReadLeasePrefix(backupId: string): string {
  return `${leaseKey('backups', backupId)}/`;
}

/**
 * Takes the lease at `key` for `holder`, or returns who holds it. Taking it again for the same run
 * (a retried activity) succeeds, and so does taking one that `sharedWith` holds (a drill's restore
 * works under the drill's leases).
 */
export async function acquireLease(
  s3: S3Client,
  bucket: string,
  key: string,
  holder: LeaseHolder,
  running: HolderRunning,
  sharedWith?: string,
): Promise<{ acquired: true } | { acquired: false; heldBy: LeaseHolder }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const body: LeaseObject = { ...holder, acquiredAt: new Date().toISOString() };
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(body), ContentType: 'application/json', IfNoneMatch: '*' }));
      return { acquired: true };
    } catch (err) {
      if (!isPreconditionFailed(err)) throw err;
    }
    const current = await getJson<LeaseObject>(s3, bucket, key);
    if (!current) continue;
    if ((current.workflowId === holder.workflowId && current.runId === holder.runId) || (sharedWith !== undefined && current.workflowId === sharedWith)) return { acquired: true };
    if (await running(current)) return { acquired: false, heldBy: current };
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }
  const current = await getJson<LeaseObject>(s3, bucket, key);
  return current ? { acquired: false, heldBy: current } : { acquired: true };
}

/** Gives the lease back if `holder` holds it; someone else's is left alone. */
export async function releaseLease(s3: S3Client, bucket: string, key: string, holder: LeaseHolder): Promise<void> {
  const current = await getJson<LeaseObject>(s3, bucket, key);
  if (current && current.workflowId === holder.workflowId && current.runId === holder.runId) {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }
}

/** The running holders of every lease under `prefix`: what retention must not pull from under. */
export async function liveLeases(s3: S3Client, bucket: string, prefix: string, running: HolderRunning): Promise<LeaseHolder[]> {
  const live: LeaseHolder[] = [];
  for (const key of await listKeys(s3, bucket, prefix)) {
    const lease = await getJson<LeaseObject>(s3, bucket, key);
    if (lease && (await running(lease))) live.push(lease);
  }
  return live;
}

function isPreconditionFailed(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412;
}

/** Asks Temporal, from an activity, whether the lease's holder run is still running. */
export const holderRunningInTemporal: HolderRunning = async (holder) => {
  const { client } = Context.current();
  try {
    const description = await client.workflow.getHandle(holder.workflowId, holder.runId).describe();
    return description.status.name === 'RUNNING';
  } catch (err) {
    if ((err as { name?: string }).name === 'WorkflowNotFoundError') return false;
    throw err;
  }
};

/** The run the calling activity belongs to, as a lease holder. */
export function callingRun(purpose: string): LeaseHolder {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new Error('a lease is taken from a workflow activity only');
  return { workflowId: run.workflowId, runId: run.runId, purpose };
}
