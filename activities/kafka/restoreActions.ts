import { ApplicationFailure } from '@temporalio/activity';
import type { DestructiveAction } from '../../contracts/restoreTypes';
import { Failure } from '../../contracts/failures';
import { getJson } from '../storage/backupObjects';
import type { RestoreActionContext, TaskOf } from '../common/plannedRestoreActions';
import type { KafkaMetadataBackup } from './backupFormat';

/** Kafka's limit on a topic name. */
const TOPIC_NAME_MAX = 249;

/**
 * Every saved group with committed offsets whose target group exists has its offsets overwritten.
 * A restore under a suffix (a drill, or beside production) refuses here a topic name the suffix
 * makes too long, and any target topic or group that exists already: Kafka topics carry no
 * marker, so the plan proves they are not there before, and the restore lease keeps another run
 * from creating them meanwhile. A backup holds one Kafka cluster: one task.
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
    // A topic selection restores only those topics, and group offsets only on them.
    const selected = kafka.topics ? new Set(kafka.topics) : undefined;
    const topics = (metadata?.topics ?? []).filter((t) => !selected || selected.has(t.name));
    const groups = (metadata?.groups ?? [])
      .map((g) => ({ ...g, offsets: g.offsets.filter((o) => !selected || selected.has(o.topic)) }))
      .filter((g) => g.offsets.length > 0);
    if (kafka.suffix !== '') {
      const existingTopics = new Set(await admin.listTopics());
      const wanted = topics.filter((t) => t.neededForRestore).map((t) => `${t.name}${kafka.suffix}`);
      const tooLong = wanted.filter((t) => t.length > TOPIC_NAME_MAX);
      const taken = [...wanted.filter((t) => existingTopics.has(t)).map((t) => `topic ${t}`), ...groups.map((g) => `${g.groupId}${kafka.suffix}`).filter((g) => existingGroups.has(g)).map((g) => `group ${g}`)];
      const problems = [
        ...(tooLong.length ? [`the suffix ${kafka.suffix} makes ${tooLong.length} topic name(s) longer than Kafka's ${TOPIC_NAME_MAX} characters, e.g. ${tooLong[0]!.slice(0, 60)}...`] : []),
        ...(taken.length ? [`${taken.slice(0, 10).join(', ')}${taken.length > 10 ? ` and ${taken.length - 10} more` : ''} already exist${taken.length === 1 ? 's' : ''}: a restore under a suffix creates its topics and groups itself; delete them or choose another suffix`] : []),
      ];
      if (problems.length) throw ApplicationFailure.nonRetryable(`restore refused at plan, nothing was touched: Kafka: ${problems.join('; ')}`, Failure.TargetRefused);
    }
    for (const group of groups) {
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
