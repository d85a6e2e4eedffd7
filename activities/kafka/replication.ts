/** A partition's replica assignment as the cluster metadata reports it. */
export interface PartitionReplicas {
  topic: string;
  partition: number;
  /** Leader broker id; -1 (or any broker not alive) when the partition has no leader. */
  leader: number;
  replicas: number[];
  isr: number[];
}

export interface ReplicationFigures {
  partitions: number;
  underReplicatedPartitions: number;
  offlinePartitions: number;
  /** "topic-partition" names, capped, so a report stays readable with thousands of partitions. */
  underReplicated: string[];
  offline: string[];
}

const LISTED = 20;

/**
 * Under-replicated: the in-sync set is smaller than the replica set (Kafka's own URP definition).
 * Offline: no leader, or a leader that is not among the live brokers.
 */
export function replicationFigures(partitions: PartitionReplicas[], liveBrokerIds: number[]): ReplicationFigures {
  const live = new Set(liveBrokerIds);
  const under = partitions.filter((p) => p.isr.length < p.replicas.length);
  const offline = partitions.filter((p) => p.leader < 0 || !live.has(p.leader));
  const name = (p: PartitionReplicas) => `${p.topic}-${p.partition}`;
  return {
    partitions: partitions.length,
    underReplicatedPartitions: under.length,
    offlinePartitions: offline.length,
    underReplicated: under.slice(0, LISTED).map(name),
    offline: offline.slice(0, LISTED).map(name),
  };
}
