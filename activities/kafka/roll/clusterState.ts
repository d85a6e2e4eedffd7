import path from 'node:path';
import { ConfigResourceTypes, type Admin } from 'kafkajs';
import type { PartitionState } from '../../../contracts/brokerSafety';
import { describeCommand } from '../../common/process';
import type { ActivityDeps } from '../../deps';
import { describeQuorumLeader, supportsDescribeQuorum } from '../protocolRequests';
import { replicationFigures, type PartitionReplicas } from '../replication';
import { POLL_MS, heartbeatIfInActivity } from './heartbeat';
import { runKafkaTool } from './restart/local';
import { runArgv } from './runArgv';

/** A partition as the roll sees it: the safety rule's input plus the leader. */
export interface ClusterPartition extends PartitionState {
  /** Leader broker id; -1 without a leader. */
  leader: number;
}

export interface KafkaClusterState {
  clusterId: string;
  /** Broker ids in the cluster metadata (fenced or stopped brokers are not listed), ascending. */
  brokersOnline: number[];
  /** Broker ids of the config, ascending. */
  brokersConfigured: number[];
  /** Every partition of every topic, internal topics (__consumer_offsets...) included. */
  partitions: ClusterPartition[];
  /** Partitions whose ISR is smaller than their replica set. */
  underReplicated: number;
  /** Partitions without a live leader. */
  offline: number;
  /** The KRaft active controller; undefined while the quorum has no leader. */
  quorumLeader: number | undefined;
}

/**
 * The quorum leader from `kafka-metadata-quorum describe --status`: its `LeaderId:` line;
 * undefined when the quorum has no leader (-1). Throws when the output has no such line.
 */
export function parseQuorumLeader(output: string): number | undefined {
  const match = /^\s*LeaderId:\s*(-?\d+)\s*$/m.exec(output);
  if (!match?.[1]) {
    throw new Error(`no "LeaderId:" line in the kafka-metadata-quorum output: ${JSON.stringify(output.slice(0, 300))}`);
  }
  const id = Number(match[1]);
  return id >= 0 ? id : undefined;
}

/** Brokers a roll must wait for: the partitions that replicate on a broker but have it outside their ISR. */
export function replicationProblems(
  partitions: Pick<ClusterPartition, 'topic' | 'partition' | 'replicas' | 'isr'>[],
  brokerId: number,
): { underReplicated: string[]; brokerOutOfIsr: string[]; brokerPartitions: number } {
  const name = (p: { topic: string; partition: number }) => `${p.topic}-${p.partition}`;
  const mine = partitions.filter((p) => p.replicas.includes(brokerId));
  return {
    underReplicated: partitions.filter((p) => p.isr.length < p.replicas.length).map(name),
    brokerOutOfIsr: mine.filter((p) => !p.isr.includes(brokerId)).map(name),
    brokerPartitions: mine.length,
  };
}

/**
 * Reads the cluster: the brokers online, every partition with its effective min.insync.replicas,
 * the KRaft quorum leader.
 */
export function createClusterReader(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bootstrap = config.kafka.brokers.map((b) => `${b.host}:${b.port}`).join(',');
  const configured = config.kafka.brokers.map((b) => b.id).sort((a, b) => a - b);
  /** One metadata read during a wait: short, so a dead broker costs little of the wait. */
  const pollTimeoutMs = 5_000;
  const toolTimeoutMs = Math.max(60_000, config.healthCheck.timeoutSeconds * 1000);

  async function withAdmin<T>(timeoutMs: number, fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = connections.kafka(timeoutMs).admin();
    try {
      await admin.connect();
      return await fn(admin);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async function onlineBrokers(timeoutMs = pollTimeoutMs): Promise<number[]> {
    return withAdmin(timeoutMs, async (admin) => (await admin.describeCluster()).brokers.map((b) => b.nodeId).sort((a, b) => a - b));
  }

  async function partitionReplicas(admin: Admin): Promise<PartitionReplicas[]> {
    // No topic list: one metadata response with every topic, internal ones included, so a topic
    // deleted by someone else meanwhile cannot fail the read.
    const { topics } = await admin.fetchTopicMetadata();
    return topics.flatMap((t) =>
      t.partitions.map((p) => ({ topic: t.name, partition: p.partitionId, leader: p.leader, replicas: [...p.replicas], isr: [...p.isr] })),
    );
  }

  /**
   * Runs one of Kafka's tools: `<toolsDir>/<script>` when configured, else the local stack's jars
   * by class name. Returns stdout; a failure's message carries the tool's output.
   */
  async function kafkaTool(script: string, className: string, args: string[], heartbeat: () => void): Promise<string> {
    if (config.kafka.toolsDir) {
      const argv = [path.join(config.kafka.toolsDir, script), ...args];
      const result = await runArgv(argv, toolTimeoutMs, heartbeat);
      if (result.timedOut) throw new Error(`${describeCommand(argv)} did not finish within ${toolTimeoutMs / 1000} s`);
      if (result.exitCode !== 0) {
        throw new Error(`${describeCommand(argv)} exited with ${result.exitCode ?? result.signal}: ${(result.stderr + result.stdout).trim()}`);
      }
      return result.stdout;
    }
    const beat = setInterval(heartbeat, POLL_MS);
    try {
      return await runKafkaTool(className, args, { timeoutMs: toolTimeoutMs });
    } finally {
      clearInterval(beat);
    }
  }

  // Asked once per worker: whether the cluster speaks DescribeQuorum v2 (Kafka 3.9+).
  let quorumApi: Promise<boolean> | undefined;

  /** The quorum leader by DescribeQuorum, or by Kafka's own tool on clusters older than 3.9. */
  async function quorumLeader(via: 'api' | 'tool' | 'auto' = 'auto'): Promise<number | undefined> {
    if (via === 'auto') {
      if (!quorumApi) {
        quorumApi = supportsDescribeQuorum(config.kafka.brokers, pollTimeoutMs);
        // A cluster that could not be asked is asked again next time.
        quorumApi.catch(() => (quorumApi = undefined));
      }
      via = (await quorumApi) ? 'api' : 'tool';
    }
    if (via === 'api') return describeQuorumLeader(config.kafka.brokers, pollTimeoutMs);
    const output = await kafkaTool(
      'kafka-metadata-quorum.sh',
      'org.apache.kafka.tools.MetadataQuorumCommand',
      ['--bootstrap-server', bootstrap, 'describe', '--status'],
      () => heartbeatIfInActivity({ waitingFor: 'kafka-metadata-quorum' }),
    );
    return parseQuorumLeader(output);
  }

  /** The effective min.insync.replicas of each topic: the override, else the broker's value. */
  async function minIsrByTopic(admin: Admin, topics: string[]): Promise<Map<string, number>> {
    const result = new Map<string, number>();
    for (let i = 0; i < topics.length; i += 100) {
      const chunk = topics.slice(i, i + 100);
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: chunk.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['min.insync.replicas'] })),
      });
      for (const resource of described.resources) {
        const entry = resource.configEntries.find((e) => e.configName === 'min.insync.replicas');
        const value = Number(entry?.configValue);
        if (!entry || !Number.isInteger(value) || value < 1) {
          throw new Error(`topic ${resource.resourceName}: no usable min.insync.replicas in DescribeConfigs (${JSON.stringify(entry?.configValue)})`);
        }
        result.set(resource.resourceName, value);
      }
    }
    return result;
  }

  async function readClusterState(): Promise<Omit<KafkaClusterState, 'quorumLeader'>> {
    return withAdmin(30_000, async (admin) => {
      const cluster = await admin.describeCluster();
      const online = cluster.brokers.map((b) => b.nodeId).sort((a, b) => a - b);
      const replicas = await partitionReplicas(admin);
      const topics = [...new Set(replicas.map((p) => p.topic))].sort();
      const minIsr = await minIsrByTopic(admin, topics);
      const partitions: ClusterPartition[] = replicas
        .map((p) => {
          const topicMinIsr = minIsr.get(p.topic);
          if (topicMinIsr === undefined) throw new Error(`topic ${p.topic}: DescribeConfigs did not answer for it`);
          return { topic: p.topic, partition: p.partition, replicas: p.replicas, isr: p.isr, leader: p.leader, minIsr: topicMinIsr };
        })
        .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
      const figures = replicationFigures(replicas, online);
      return {
        clusterId: cluster.clusterId,
        brokersOnline: online,
        brokersConfigured: configured,
        partitions,
        underReplicated: figures.underReplicatedPartitions,
        offline: figures.offlinePartitions,
      };
    });
  }

  return { pollTimeoutMs, toolTimeoutMs, withAdmin, onlineBrokers, partitionReplicas, quorumLeader, readClusterState };
}

export type ClusterReader = ReturnType<typeof createClusterReader>;
