import type { DestructiveAction } from '../../contracts/restoreTypes';
import { getJson } from '../storage/backupObjects';
import type { RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import { listBucket, type BucketListing } from './backup';

/** Every target bucket holding objects that differ from the backup's has them overwritten. */
export async function plannedObjectStoreRestoreActions(
  { deps, s3 }: RestoreActionContext,
  tasks: TaskOf<'objectStore'>[],
): Promise<DestructiveAction[]> {
  const actions: DestructiveAction[] = [];
  for (const t of tasks) {
    const listing = await getJson<BucketListing>(s3, deps.config.objectStore.backupBucket, t.listing.key);
    let present: Awaited<ReturnType<typeof listBucket>> = [];
    try {
      present = await listBucket(s3, t.target);
    } catch {
      // The target bucket does not exist yet: nothing in it to overwrite.
    }
    const now = new Map(present.map((o) => [o.key, o]));
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
