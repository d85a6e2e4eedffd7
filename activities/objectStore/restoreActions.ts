import { ApplicationFailure } from '@temporalio/activity';
import type { DestructiveAction } from '../../contracts/restoreTypes';
import { Failure } from '../../contracts/failures';
import { getJson } from '../storage/backupObjects';
import type { RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import { listBucket, type BucketListing } from './backup';
import { bucketOwnerTag, isBucketOwnedBy } from './ownership';

/**
 * Every target bucket holding objects that differ from the backup's has them overwritten. A
 * target beside its source that exists already must carry this run's tag, or the plan refuses.
 */
export async function plannedObjectStoreRestoreActions(
  { deps, s3, owner }: RestoreActionContext,
  tasks: TaskOf<'objectStore'>[],
): Promise<DestructiveAction[]> {
  const actions: DestructiveAction[] = [];
  for (const t of tasks) {
    const listing = await getJson<BucketListing>(s3, deps.config.objectStore.backupBucket, t.listing.key);
    let present: Awaited<ReturnType<typeof listBucket>> | undefined;
    try {
      present = await listBucket(s3, t.target);
    } catch {
      // The target bucket does not exist yet: nothing in it to overwrite.
    }
    if (present && t.target !== t.bucket && !(await isBucketOwnedBy(s3, t.target, owner))) {
      const tag = await bucketOwnerTag(s3, t.target);
      throw ApplicationFailure.nonRetryable(
        `restore refused at plan, nothing was touched: bucket ${t.target} already exists and was not created by this run (${tag ? `ballast-owner tag: ${tag}` : 'no ballast-owner tag'}); delete it or choose another target`,
        Failure.TargetRefused,
      );
    }
    const now = new Map((present ?? []).map((o) => [o.key, o]));
    const differing = (listing?.objects ?? []).filter((o) => now.has(o.key) && now.get(o.key)!.etag !== o.etag).length;
    if (differing > 0) {
      actions.push({
        component: 'objectStore',
        action: 'overwrite objects',
        target: t.target,
        detail: `${differing} object(s) in ${t.target} differ from the backup and are overwritten; objects the backup does not list are left in place`,
      });
    }
  }
  return actions;
}
