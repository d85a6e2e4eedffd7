import { ApplicationFailure } from '@temporalio/activity';
import { ConfigResourceTypes, type Admin } from 'kafkajs';
import type { KafkaFigures, KafkaGroupFigures, KafkaTopicFigures } from '../../contracts/demoResetTypes';
import { Failure } from '../../contracts/failures';
import { isInternalTopic, topicConfigOverrides, type ConfigEntryLike } from './backupFormat';
import { checkGroupsIdle } from './restoreGroups';
import { createTopicsAndWait, deleteRecords, retryOnLeaderChange } from './topics';

/**
 * A demo Kafka cluster carries a marker topic (demoReset.kafkaMarkerTopic), created by the
 * demo-marker command with one partition. Kafka refuses topic configs it does not know, so the
 * marker is a topic, not a config. A demo reset refuses a cluster without it and never purges it.
 */
export async function markDemoCluster(admin: Admin, markerTopic: string, replication: number): Promise<void> {
  if (await hasDemoMarker(admin, markerTopic)) return;
  try {
    await createTopicsAndWait(admin, [{ topic: markerTopic, numPartitions: 1, replicationFactor: replication }]);
  } catch (err) {
    // Another marker command created it meanwhile.
    if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS' && !(await hasDemoMarker(admin, markerTopic))) throw err;
  }
}

export async function hasDemoMarker(admin: Admin, markerTopic: string): Promise<boolean> {
  return (await admin.listTopics()).includes(markerTopic);
}

/** The topics a demo reset purges: the configured ones (each must exist), or every topic but internal ones and the marker. */
export async function demoTopics(admin: Admin, configured: string[], markerTopic: string): Promise<string[]> {
  const existing = await admin.listTopics();
  if (configured.length > 0) {
    const missing = configured.filter((t) => !existing.includes(t));
    if (missing.length > 0) {
      throw ApplicationFailure.nonRetryable(`demoReset.kafkaTopics names topics the cluster does not have: ${missing.join(', ')}`, Failure.UnknownTopic);
    }
    return [...configured].sort();
  }
  return existing.filter((t) => !isInternalTopic(t) && t !== markerTopic).sort();
}

/** Each topic's partitions (log start, high watermark, messages) and cleanup.policy; every group's committed offsets on them. */
export async function kafkaFigures(admin: Admin, topics: string[]): Promise<KafkaFigures> {
  const policies = await cleanupPolicies(admin, topics);
  const figures: KafkaTopicFigures[] = [];
  for (const topic of topics) {
    const offsets = await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsets(topic));
    figures.push({
      topic,
      cleanupPolicy: policies.get(topic) ?? 'delete',
      partitions: offsets
        .map((p) => ({ partition: p.partition, logStart: Number(p.low), highWatermark: Number(p.high), messages: Number(p.high) - Number(p.low) }))
        .sort((a, b) => a.partition - b.partition),
    });
  }
  return { topics: figures, groups: await groupFigures(admin, topics) };
}

async function cleanupPolicies(admin: Admin, topics: string[]): Promise<Map<string, string>> {
  const policies = new Map<string, string>();
  if (topics.length === 0) return policies;
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['cleanup.policy'] })),
  });
  for (const r of described.resources) {
    if (r.errorCode) throw new Error(`describeConfigs of topic ${r.resourceName} failed: ${r.errorMessage || `error ${r.errorCode}`}`);
    policies.set(r.resourceName, r.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue ?? 'delete');
  }
  return policies;
}

/** Groups with committed offsets on any of the topics, with those offsets and their member count. */
async function groupFigures(admin: Admin, topics: string[]): Promise<KafkaGroupFigures[]> {
  const groupIds = (await admin.listGroups()).groups.map((g) => g.groupId).sort();
  const found: KafkaGroupFigures[] = [];
  for (const groupId of groupIds) {
    const committed = await admin.fetchOffsets({ groupId, topics });
    const offsets = committed.flatMap((t) =>
      t.partitions.filter((p) => Number(p.offset) >= 0).map((p) => ({ topic: t.topic, partition: p.partition, offset: Number(p.offset) })),
    );
    if (offsets.length === 0) continue;
    const [described] = (await admin.describeGroups([groupId])).groups;
    found.push({ groupId, members: described?.members.length ?? 0, offsets: offsets.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition) });
  }
  return found;
}

/** deleteRecords is refused on a topic whose cleanup.policy lacks `delete` (a compact-only topic). */
export function purgeNeedsDeletePolicy(policy: string): boolean {
  return !policy.split(',').map((p) => p.trim()).includes('delete');
}

/**
 * Deletes every record of `topic` up to each partition's current high watermark; the topic, its
 * partitions and its configs stay. Kafka accepts DeleteRecords only when cleanup.policy contains
 * `delete`: a compact-only topic gets `compact,delete` for the purge, then exactly its own
 * overrides back (`originalPolicy` is the plan's reading, so a retry after a crash mid-purge
 * restores the topic's policy, not the temporary one it finds). Run again, it deletes nothing
 * more and restores the same policy.
 */
export async function purgeTopic(admin: Admin, topic: string, originalPolicy: string): Promise<number> {
  const temporary = purgeNeedsDeletePolicy(originalPolicy);
  if (temporary) await setCleanupPolicy(admin, topic, `${originalPolicy},delete`);
  try {
    const offsets = await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsets(topic));
    const partitions = offsets.filter((p) => Number(p.high) > Number(p.low)).map((p) => ({ partition: p.partition, offset: p.high }));
    if (partitions.length > 0) await deleteRecords(admin, topic, partitions);
    return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  } finally {
    if (temporary) await setCleanupPolicy(admin, topic, originalPolicy);
  }
}

/**
 * AlterConfigs replaces a topic's whole set of overrides (kafkajs has no incremental form), so
 * the topic's other overrides are read and sent along unchanged.
 */
async function setCleanupPolicy(admin: Admin, topic: string, policy: string): Promise<void> {
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] });
  const resource = described.resources[0];
  if (!resource || resource.errorCode) throw new Error(`describeConfigs of topic ${topic} failed: ${resource?.errorMessage ?? 'no answer'}`);
  const overrides = topicConfigOverrides(resource.configEntries as ConfigEntryLike[]);
  const configEntries = Object.entries({ ...overrides, 'cleanup.policy': policy })
    .filter((e): e is [string, string] => e[1] !== null)
    .map(([name, value]) => ({ name, value }));
  await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries }] });
}

/**
 * Moves every committed offset of `groups` on the purged topics to the partition's new start
 * (its log start after the purge, which is where a consumer would resume anyway). A group with
 * members cannot be moved: the step fails, retryably, naming it. Running it again is harmless.
 */
export async function resetGroups(admin: Admin, groups: KafkaGroupFigures[]): Promise<number> {
  await checkGroupsIdle('demo reset', admin, groups.map((g) => g.groupId));
  let moved = 0;
  const starts = new Map<string, Map<number, string>>();
  const startOf = async (topic: string) => {
    if (!starts.has(topic)) {
      const offsets = await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsets(topic));
      starts.set(topic, new Map(offsets.map((p) => [p.partition, p.low])));
    }
    return starts.get(topic)!;
  };
  for (const group of groups) {
    for (const topic of [...new Set(group.offsets.map((o) => o.topic))]) {
      const start = await startOf(topic);
      const partitions = group.offsets.filter((o) => o.topic === topic).map((o) => ({ partition: o.partition, offset: start.get(o.partition) ?? '0' }));
      await retryOnLeaderChange(admin, [topic], () => admin.setOffsets({ groupId: group.groupId, topic, partitions }));
      moved += partitions.length;
    }
  }
  return moved;
}
