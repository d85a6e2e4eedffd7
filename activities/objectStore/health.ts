import { HeadBucketCommand } from '@aws-sdk/client-s3';
import type { SystemHealth } from '../../contracts/healthTypes';
import { errorText, runCheck } from '../common/healthReport';
import { checkTimeoutMs, type ActivityDeps } from '../deps';

export function createObjectStoreActivities(deps: ActivityDeps) {
  const { config, connections } = deps;

  return {
    /** Heads every configured data bucket and the backup bucket. */
    async checkObjectStore(timeoutSeconds?: number): Promise<SystemHealth> {
      const timeoutMs = checkTimeoutMs(deps, timeoutSeconds);
      return runCheck('objectStore', timeoutMs, async (figures) => {
        const s3 = connections.s3(timeoutMs);
        try {
          const buckets = [...new Set([...config.objectStore.buckets, config.objectStore.backupBucket])];
          figures.endpoint = config.objectStore.endpoint ?? `s3.${config.objectStore.region}.amazonaws.com`;
          figures.bucketsChecked = buckets.length;
          const results = await Promise.all(
            buckets.map(async (bucket) => {
              try {
                await s3.send(new HeadBucketCommand({ Bucket: bucket }));
                return undefined;
              } catch (err) {
                return `bucket ${bucket}: ${bucketError(err)}`;
              }
            }),
          );
          const problems = results.filter((r): r is string => r !== undefined);
          figures.bucketsAvailable = buckets.length - problems.length;
          return problems;
        } finally {
          s3.destroy();
        }
      });
    },
  };
}

/** HeadBucket answers without a body, so the SDK's message is only the status; say what it means. */
function bucketError(err: unknown): string {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === 404) return 'does not exist (404)';
  if (status === 403) return 'access denied (403)';
  return errorText(err);
}
