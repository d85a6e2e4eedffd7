import { ApplicationFailure } from '@temporalio/activity';
import { Failure } from '../../contracts/failures';
import type { ActivityDeps } from '../deps';
import { acquireLease, backupReadLeaseKey, callingRun, holderRunningInTemporal, leaseKey, releaseLease } from '../storage/leases';

export function createRestoreLeaseActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;
  return {
    /**
     * Before anything is touched: a read lease on the backup (retention keeps it), and one lease
     * per target, "<system>/<name>" (no other restore or drill writes it meanwhile). Refuses,
     * naming the run that holds a target, and gives back what it took. A drill's restore passes the drill as
     * `parentWorkflowId`: the drill holds the leases through its teardown, and its restore works
     * under them.
     */
    async acquireRestoreLeases({ backupId, targets, purpose, parentWorkflowId }: { backupId: string; targets: string[]; purpose: string; parentWorkflowId?: string }): Promise<string[]> {
      const holder = callingRun(purpose);
      const s3 = connections.s3();
      const taken: string[] = [];
      try {
        const targetKeys = targets.map((t) => leaseKey('restore-targets', ...t.split('/')));
        for (const key of [backupReadLeaseKey(backupId, holder.workflowId), ...targetKeys]) {
          const lease = await acquireLease(s3, bucket, key, holder, holderRunningInTemporal, parentWorkflowId);
          if (!lease.acquired) {
            for (const k of taken) await releaseLease(s3, bucket, k, holder);
            throw ApplicationFailure.nonRetryable(
              `refused at plan, nothing was touched: ${key.startsWith(leaseKey('backups')) ? `backup ${backupId}` : key.split('/').slice(2).map(decodeURIComponent).join(' ')} is in use by ${lease.heldBy.workflowId} (${lease.heldBy.purpose}); one restore per target at a time`,
              Failure.TargetBusy,
            );
          }
          taken.push(key);
        }
        return taken;
      } finally {
        s3.destroy();
      }
    },

    async releaseRestoreLeases({ keys, purpose }: { keys: string[]; purpose: string }): Promise<void> {
      const holder = callingRun(purpose);
      const s3 = connections.s3();
      try {
        for (const key of keys) await releaseLease(s3, bucket, key, holder);
      } finally {
        s3.destroy();
      }
    },
  };
}
