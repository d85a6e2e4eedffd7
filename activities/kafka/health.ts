import type { SystemHealth } from '../../contracts/healthTypes';
import { runCheck } from '../common/healthReport';
import { checkTimeoutMs, type ActivityDeps } from '../deps';
import { replicationFigures, type PartitionReplicas } from './replication';

export function createKafkaActivities(deps: ActivityDeps) {
  const { config, connections } = deps;

  return {
    /**
     * Counts the configured brokers that are in the cluster's metadata, and the partitions that are
     * under-replicated (ISR smaller than the replica set) or offline (no live leader).
     */
    async checkKafka(timeoutSeconds?: number): Promise<SystemHealth> {
      const timeoutMs = checkTimeoutMs(deps, timeoutSeconds);
      return runCheck('kafka', timeoutMs, async (figures) => {
        const admin = connections.kafka(timeoutMs).admin();
        try {
          await admin.connect();
          const cluster = await admin.describeCluster();
          const online = cluster.brokers.map((b) => b.nodeId).sort((a, b) => a - b);
          const configured = config.kafka.brokers.map((b) => b.id);
          const missing = configured.filter((id) => !online.includes(id));
          figures.clusterId = cluster.clusterId;
          figures.brokersConfigured = configured.length;
          figures.brokersOnline = online.length;
          figures.onlineBrokerIds = online;
          figures.missingBrokerIds = missing;

          const topics = await admin.listTopics();
          const metadata = topics.length ? await admin.fetchTopicMetadata({ topics }) : { topics: [] };
          const partitions: PartitionReplicas[] = metadata.topics.flatMap((t) =>
            t.partitions.map((p) => ({
              topic: t.name,
              partition: p.partitionId,
              leader: p.leader,
              replicas: p.replicas,
              isr: p.isr,
            })),
          );
          const replication = replicationFigures(partitions, online);
          Object.assign(figures, { topics: topics.length, ...replication });

          const problems: string[] = [];
          if (missing.length) problems.push(`broker(s) offline: ${missing.join(', ')}`);
          if (replication.underReplicatedPartitions) {
            problems.push(`${replication.underReplicatedPartitions} under-replicated partition(s)`);
          }
          if (replication.offlinePartitions) problems.push(`${replication.offlinePartitions} offline partition(s)`);
          return problems;
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      });
    },
  };
}
