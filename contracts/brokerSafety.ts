/**
 * "May this broker be restarted now?": the rule Strimzi's KafkaRoller applies before it rolls a
 * broker, as a pure function (workflow code imports it; the unit tests pin it down).
 */

export interface PartitionState {
  topic: string;
  partition: number;
  replicas: number[];
  isr: number[];
  /** The topic's effective min.insync.replicas. */
  minIsr: number;
}

export interface PartitionConcern {
  topic: string;
  partition: number;
  replicas: number[];
  isr: number[];
  minIsr: number;
  why: string;
}

export interface SafetyVerdict {
  brokerId: number;
  safe: boolean;
  /** Partitions that forbid the restart now; waiting (for the ISR to grow back) may clear them. */
  blocking: PartitionConcern[];
  /**
   * Partitions whose replication factor is at most min.insync.replicas (and whose ISR is full):
   * any restart of one of their replicas stops acks=all writes. They can never become safe, so
   * they are reported and do not block (a roll would otherwise wait forever).
   */
  neverSafe: PartitionConcern[];
}

/**
 * For every partition with a replica on `brokerId`, the restart is refused while:
 * - its ISR is already below min.insync.replicas (acks=all writes fail already; a restart can
 *   make the partition offline), or
 * - its ISR equals min.insync.replicas and the broker is in it (the restart takes the ISR below
 *   the minimum, so acks=all producers fail until it is back).
 */
export function restartSafety(brokerId: number, partitions: PartitionState[]): SafetyVerdict {
  const blocking: PartitionConcern[] = [];
  const neverSafe: PartitionConcern[] = [];
  for (const p of partitions) {
    if (!p.replicas.includes(brokerId)) continue;
    const concern = (why: string): PartitionConcern => ({ topic: p.topic, partition: p.partition, replicas: p.replicas, isr: p.isr, minIsr: p.minIsr, why });
    // Already short of in-sync replicas: a restart could take the partition offline. This blocks
    // whatever the replication factor, until the ISR grows back or the roll's timeout stops it.
    if (p.isr.length < p.minIsr) {
      blocking.push(concern(`ISR ${p.isr.length} is already below min.insync.replicas ${p.minIsr}`));
    } else if (p.replicas.length <= p.minIsr) {
      neverSafe.push(concern(`replication factor ${p.replicas.length} <= min.insync.replicas ${p.minIsr}: a restart of any replica stops acks=all writes`));
    } else if (p.isr.length === p.minIsr && p.isr.includes(brokerId)) {
      blocking.push(concern(`ISR ${p.isr.length} equals min.insync.replicas ${p.minIsr} and broker ${brokerId} is in it`));
    }
  }
  return { brokerId, safe: blocking.length === 0, blocking, neverSafe };
}

/**
 * The restart order: every broker that is not the active controller first (ascending id), the
 * active controller (the KRaft quorum leader) last. Re-planned before every step, since the
 * leader can move while the roll runs.
 */
export function nextBroker(remaining: number[], quorumLeader: number | undefined): number | undefined {
  const others = remaining.filter((id) => id !== quorumLeader).sort((a, b) => a - b);
  return others[0] ?? remaining.find((id) => id === quorumLeader);
}
