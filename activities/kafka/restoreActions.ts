import type { DestructiveAction } from '../../contracts/restoreTypes';
import { getJson } from '../storage/backupObjects';
import type { RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import type { KafkaMetadataBackup } from './backupFormat';

/**
 * Every saved group with committed offsets whose target group exists has its offsets overwritten.
 * A backup holds one Kafka cluster: one task.
 */
export async function plannedKafkaRestoreActions(
  { deps, s3 }: RestoreActionContext,
  tasks: TaskOf<'kafka'>[],
): Promise<DestructiveAction[]> {
  const actions: DestructiveAction[] = [];
  const kafka = tasks[0];
  if (!kafka) return actions;
  const metadata = await getJson<KafkaMetadataBackup>(s3, deps.config.objectStore.backupBucket, kafka.metadata.key);
  const admin = deps.connections.kafka().admin();
  await admin.connect();
  try {
    const existingGroups = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
    for (const group of metadata?.groups ?? []) {
      const target = `${group.groupId}${kafka.suffix}`;
      const committed = group.offsets.flatMap((o) => o.partitions).filter((p) => p.offset !== '-1').length;
      if (committed > 0 && existingGroups.has(target)) {
        actions.push({
          component: 'kafka',
          action: 'set group offsets',
          target,
          detail: `overwrite the committed offsets of ${committed} partition(s) with the saved ones (the group must have no running consumers)`,
        });
      }
    }
  } finally {
    await admin.disconnect();
  }
  return actions;
}
