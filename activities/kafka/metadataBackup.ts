import { Context } from '@temporalio/activity';
import { heartbeat } from '../common/heartbeat';
import { ConfigResourceTypes, type Admin } from 'kafkajs';
import type { BackupPiece, ComponentResult } from '../../contracts/backupTypes';
import { mapLimit } from '../../contracts/concurrency';
import { backupKey, findCompletePiece, markPieceComplete, putJson } from '../storage/backupObjects';
import { chunks } from '../common/chunks';
import type { ActivityDeps } from '../deps';
import { checkBackupId, throwIfCancelled } from './backupChecks';
import {
  BACKUP_GROUP_PREFIX,
  KAFKA_METADATA_FORMAT,
  KAFKA_METADATA_VERSION,
  isInternalTopic,
  topicConfigOverrides,
  type KafkaGroupMetadata,
  type KafkaMetadataBackup,
  type KafkaTopicMetadata,
} from './backupFormat';
import { settledTopicNames } from './protocolRequests';
import { RenewableAdmin } from './renewableAdmin';

export interface KafkaMetadataBackupRequest {
  backupId: string;
}

/** Admin requests run this many at once (per group, per topic). */
const ADMIN_CONCURRENCY = 8;
/** How long the metadata backup waits for the brokers to agree on the topic list. */
const TOPIC_SETTLE_MS = 10_000;

export function createKafkaMetadataBackupActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    /**
     * Writes the cluster's metadata as one JSON object: brokers, every topic (partitions, replica
     * assignment, the topic's own config overrides, low/high watermarks) and every consumer group
     * with its committed offsets. Group offsets are read before the watermarks, so each committed
     * offset is at most the recorded high watermark of its partition.
     */
    async backupKafkaMetadata({ backupId }: KafkaMetadataBackupRequest): Promise<ComponentResult> {
      const ctx = Context.current();
      checkBackupId('backupKafkaMetadata', backupId);
      const unit = 'kafka metadata';
      const key = backupKey(backupId, 'kafka', 'metadata.json');
      const s3 = connections.s3();
      try {
        const earlier = await findCompletePiece(s3, bucket, key);
        if (earlier) return { component: 'kafka', unit, pieces: [earlier], resumed: true };

        const started = new Date();
        const admins = new RenewableAdmin(() => connections.kafka(60_000).admin());
        try {
          const checkCancelled = () => throwIfCancelled(ctx);
          const cluster = await admins.call((a) => a.describeCluster());
          // Other people create and delete topics while this runs: a topic deleted between the
          // listing and a later read is left out (and named in vanishedTopics), not an error.
          const vanished = new Set<string>();
          // Every broker is asked, until they agree: a topic created a moment before the backup may
          // not have reached the metadata of every broker yet. kafkajs' own listing is the fallback
          // when none answers.
          const settled = await settledTopicNames(config.kafka.brokers, 10_000, TOPIC_SETTLE_MS);
          const { names, metadata } = await admins.call(async (a) => {
            const listed = settled ?? (await a.listTopics()).sort();
            return { names: listed, metadata: listed.length ? await a.fetchTopicMetadata({ topics: listed }) : { topics: [] } };
          }, 6);
          checkCancelled();
          const stillThere = async (name: string) => (await admins.call((a) => a.listTopics())).includes(name);
          const configs = await admins.call((a) => describeTopicConfigs(a, names, vanished));
          checkCancelled();

          const groupIds = (await admins.call((a) => a.listGroups())).groups
            .filter((g) => !g.groupId.startsWith(BACKUP_GROUP_PREFIX))
            .sort((a, b) => a.groupId.localeCompare(b.groupId));
          const described = new Map<string, { state: string; members: number; protocolType: string }>();
          for (const chunk of chunks(groupIds.map((g) => g.groupId), 50)) {
            for (const g of (await admins.call((a) => a.describeGroups(chunk))).groups) {
              described.set(g.groupId, { state: g.state, members: g.members.length, protocolType: g.protocolType });
            }
          }

          const groupOffsetsFrom = new Date();
          const allGroups = await mapLimit(groupIds, ADMIN_CONCURRENCY, async (g): Promise<KafkaGroupMetadata> => {
            checkCancelled();
            const offsets = await admins.call((a) => a.fetchOffsets({ groupId: g.groupId }));
            heartbeat({ phase: 'groups', group: g.groupId }, ctx);
            const d = described.get(g.groupId);
            return {
              groupId: g.groupId,
              protocolType: d?.protocolType || g.protocolType,
              state: d?.state ?? 'Unknown',
              members: d?.members ?? 0,
              offsets: offsets
                .map((t) => ({
                  topic: t.topic,
                  partitions: t.partitions
                    .map((p) => ({ partition: p.partition, offset: p.offset, metadata: p.metadata ?? null }))
                    .sort((a, b) => a.partition - b.partition),
                }))
                .sort((a, b) => a.topic.localeCompare(b.topic)),
            };
          });
          // A group deleted since the listing is Dead with nothing committed: nothing to restore.
          const groups = allGroups.filter((g) => !(g.state === 'Dead' && g.offsets.length === 0));
          const groupOffsetsTo = new Date();

          const watermarksFrom = new Date();
          const watermarks = await mapLimit(names, ADMIN_CONCURRENCY, async (name) => {
            checkCancelled();
            if (vanished.has(name)) return undefined;
            const offsets = await admins.callUnlessGone((a) => a.fetchTopicOffsets(name), async () => !(await stillThere(name)));
            heartbeat({ phase: 'watermarks', topic: name }, ctx);
            if (!offsets) {
              vanished.add(name);
              return undefined;
            }
            return offsets
              .map((o) => ({ partition: o.partition, low: o.low, high: o.high }))
              .sort((a, b) => a.partition - b.partition);
          });
          const watermarksTo = new Date();

          const byName = new Map(metadata.topics.map((t) => [t.name, t]));
          const topics: KafkaTopicMetadata[] = names.flatMap((name, i) => {
            if (vanished.has(name)) return [];
            const partitions = [...(byName.get(name)?.partitions ?? [])].sort((a, b) => a.partitionId - b.partitionId);
            const internal = isInternalTopic(name);
            return {
              name,
              internal,
              neededForRestore: !internal,
              partitions: partitions.length,
              replicationFactor: Math.max(0, ...partitions.map((p) => p.replicas.length)),
              replicaAssignment: partitions.map((p) => ({
                partition: p.partitionId,
                replicas: p.replicas,
                leader: p.leader,
                isr: p.isr,
              })),
              configs: configs.get(name) ?? {},
              watermarks: watermarks[i] ?? [],
            };
          });

          const doc: KafkaMetadataBackup = {
            format: KAFKA_METADATA_FORMAT,
            version: KAFKA_METADATA_VERSION,
            backupId,
            clusterId: cluster.clusterId,
            controller: cluster.controller,
            brokers: cluster.brokers
              .map((b) => ({ id: b.nodeId, host: b.host, port: b.port }))
              .sort((a, b) => a.id - b.id),
            times: {
              startedAt: started.toISOString(),
              groupOffsetsFrom: groupOffsetsFrom.toISOString(),
              groupOffsetsTo: groupOffsetsTo.toISOString(),
              watermarksFrom: watermarksFrom.toISOString(),
              watermarksTo: watermarksTo.toISOString(),
            },
            topics,
            groups,
            vanishedTopics: [...vanished].sort(),
          };
          checkCancelled();
          const stored = await putJson(s3, bucket, key, doc);
          const finished = new Date();
          const piece: BackupPiece = {
            component: 'kafka',
            name: 'metadata',
            key,
            size: stored.size,
            sha256: stored.sha256,
            snapshotAt: groupOffsetsFrom.toISOString(),
            startedAt: started.toISOString(),
            finishedAt: finished.toISOString(),
            durationMs: finished.getTime() - started.getTime(),
            details: {
              topics: topics.length,
              groups: groups.length,
              partitions: topics.reduce((n, t) => n + t.partitions, 0),
              vanishedTopics: vanished.size,
              format: KAFKA_METADATA_FORMAT,
              version: KAFKA_METADATA_VERSION,
            },
          };
          await markPieceComplete(s3, bucket, piece);
          return { component: 'kafka', unit, pieces: [piece], resumed: false };
        } finally {
          await admins.close();
        }
      } finally {
        s3.destroy();
      }
    },
  };
}

/**
 * Each topic's own config overrides, described in requests of at most 100 topics. A topic deleted
 * since it was listed is added to `vanished`.
 */
async function describeTopicConfigs(
  admin: Admin,
  topics: string[],
  vanished: Set<string>,
): Promise<Map<string, Record<string, string | null>>> {
  const result = new Map<string, Record<string, string | null>>();
  for (const chunk of chunks(topics, 100)) {
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: chunk.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
    });
    for (const r of described.resources) {
      if (r.errorCode === UNKNOWN_TOPIC_OR_PARTITION) {
        vanished.add(r.resourceName);
      } else if (r.errorCode) {
        throw new Error(`describeConfigs of topic ${r.resourceName} failed: ${r.errorMessage || `error ${r.errorCode}`}`);
      } else {
        result.set(r.resourceName, topicConfigOverrides(r.configEntries));
      }
    }
  }
  return result;
}

const UNKNOWN_TOPIC_OR_PARTITION = 3;
