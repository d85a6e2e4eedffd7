import { Context } from '@temporalio/activity';
import { heartbeat } from '../../common/heartbeat';
import type { Config } from '../../../contracts/config';
import { brokerOf, timeoutInput, type BrokerWaitInput } from './brokerInput';
import { replicationProblems, type ClusterReader } from './clusterState';
import { brokerTimeout, withDeadline } from './timeouts';

export interface BrokerWaitResult {
  brokerId: number;
  durationMs: number;
}

export interface ReplicationRestoredResult extends BrokerWaitResult {
  /** Partitions checked at the end (every partition of the cluster). */
  partitions: number;
  /** Partitions that have a replica on the broker. */
  brokerPartitions: number;
}

/** What the waits heartbeat. */
export interface BrokerWaitHeartbeat {
  brokerId: number;
  waitingFor: string;
  elapsedMs: number;
  last: string;
}

/**
 * How often a wait reads the cluster metadata: a read costs a few milliseconds, and every
 * broker's wait ends up to one interval after the fact.
 */
const WAIT_POLL_MS = 500;
const NO_CHECK = 'no check has run';

/**
 * Polls `check` about once a second until it reports done, heartbeating what it waits for, and
 * throws BrokerTimeout after `timeoutSeconds`. A failing check (a broker refusing connections
 * mid-restart) counts as "not yet"; its error is the "last seen" of the timeout message.
 */
async function pollUntil<T>(
  brokerId: number,
  waitingFor: string,
  timeoutSeconds: number,
  check: () => Promise<{ done: true; value: T } | { done: false; last: string }>,
): Promise<{ value: T; durationMs: number }> {
  const ctx = Context.current();
  const started = Date.now();
  const deadline = started + timeoutSeconds * 1000;
  let last = NO_CHECK;
  for (;;) {
    const remaining = deadline - Date.now();
    let outcome: Awaited<ReturnType<typeof check>> | undefined;
    try {
      const attempt = await withDeadline(check(), Math.max(remaining, 0));
      // Cut off by the deadline: the previous answer stays the one reported.
      if (attempt.timedOut) last = last === NO_CHECK ? `the cluster metadata did not answer within ${timeoutSeconds} s` : last;
      else outcome = attempt.value;
    } catch (err) {
      last = `error: ${(err as Error).message}`;
    }
    if (outcome?.done) return { value: outcome.value, durationMs: Date.now() - started };
    if (outcome) last = outcome.last;
    const elapsedMs = Date.now() - started;
    heartbeat({ brokerId, waitingFor, elapsedMs, last } satisfies BrokerWaitHeartbeat, ctx);
    if (Date.now() >= deadline) throw brokerTimeout(brokerId, waitingFor, timeoutSeconds, elapsedMs, last);
    await ctx.sleep(Math.min(WAIT_POLL_MS, Math.max(deadline - Date.now(), 0)));
  }
}

/**
 * Watches the cluster metadata while `work` runs and reports whether the broker was seen absent.
 */
export async function watchingGone<T>(
  onlineBrokers: (timeoutMs: number) => Promise<number[]>,
  brokerId: number,
  work: Promise<T>,
): Promise<{ value: T; goneObserved: boolean }> {
  let finished = false;
  let goneObserved = false;
  const watcher = (async () => {
    while (!finished && !goneObserved) {
      try {
        const online = await onlineBrokers(3_000);
        if (!online.includes(brokerId)) goneObserved = true;
      } catch {
        // A refused connection mid-shutdown says nothing about the metadata.
      }
      if (!finished && !goneObserved) await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
    }
  })();
  try {
    const value = await work;
    return { value, goneObserved };
  } finally {
    finished = true;
    await watcher;
  }
}

/** The waits that follow a broker's stop and start; each polls, heartbeats and gives up with BrokerTimeout. */
export function createBrokerWaits(config: Config, cluster: ClusterReader) {
  const roll = config.kafka.roll;
  const { onlineBrokers, partitionReplicas, pollTimeoutMs, withAdmin } = cluster;

  return {
    /** Until the broker is absent from the cluster metadata. */
    async waitBrokerGone(input: BrokerWaitInput): Promise<BrokerWaitResult> {
      const brokerId = input?.brokerId;
      brokerOf(config, brokerId);
      const timeoutSeconds = timeoutInput(input.timeoutSeconds, roll.brokerGoneTimeoutSeconds, 'timeoutSeconds');
      const { durationMs } = await pollUntil(brokerId, 'to leave the cluster metadata', timeoutSeconds, async () => {
        const online = await onlineBrokers();
        return online.includes(brokerId)
          ? { done: false, last: `broker ${brokerId} still in the cluster metadata (online: ${online.join(', ')})` }
          : { done: true, value: undefined };
      });
      return { brokerId, durationMs };
    },

    /** Until the broker is in the cluster metadata again. */
    async waitBrokerBack(input: BrokerWaitInput): Promise<BrokerWaitResult> {
      const brokerId = input?.brokerId;
      brokerOf(config, brokerId);
      const timeoutSeconds = timeoutInput(input.timeoutSeconds, roll.brokerBackTimeoutSeconds, 'timeoutSeconds');
      const { durationMs } = await pollUntil(brokerId, 'to come back into the cluster metadata', timeoutSeconds, async () => {
        const online = await onlineBrokers();
        return online.includes(brokerId)
          ? { done: true, value: undefined }
          : { done: false, last: `broker ${brokerId} not in the cluster metadata (online: ${online.join(', ') || 'none'})` };
      });
      return { brokerId, durationMs };
    },

    /** Until no partition of the cluster is under-replicated and the broker is in the ISR of every partition it replicates. */
    async waitReplicationRestored(input: BrokerWaitInput): Promise<ReplicationRestoredResult> {
      const brokerId = input?.brokerId;
      brokerOf(config, brokerId);
      const timeoutSeconds = timeoutInput(input.timeoutSeconds, roll.replicationTimeoutSeconds, 'timeoutSeconds');
      // Each read may be answered by another broker, and brokers learn of ISR changes in their
      // own time: restored means three reads in a row say so.
      let confirmed = 0;
      const { value, durationMs } = await pollUntil(
        brokerId,
        'to rejoin the ISR of all its partitions with 0 under-replicated partitions in the cluster',
        timeoutSeconds,
        async () =>
          withAdmin(pollTimeoutMs, async (admin) => {
            const online = (await admin.describeCluster()).brokers.map((b) => b.nodeId);
            const partitions = await partitionReplicas(admin);
            const problems = replicationProblems(partitions, brokerId);
            const clean = online.includes(brokerId) && problems.underReplicated.length === 0 && problems.brokerOutOfIsr.length === 0;
            confirmed = clean ? confirmed + 1 : 0;
            if (confirmed >= 3) {
              return { done: true as const, value: { partitions: partitions.length, brokerPartitions: problems.brokerPartitions } };
            }
            const sample = (list: string[]) => `${list.length}${list.length ? ` (${list.slice(0, 5).join(', ')}${list.length > 5 ? ', ...' : ''})` : ''}`;
            return {
              done: false as const,
              last: [
                online.includes(brokerId) ? undefined : `broker ${brokerId} not in the cluster metadata`,
                `${sample(problems.underReplicated)} under-replicated partition(s)`,
                `broker ${brokerId} out of the ISR of ${sample(problems.brokerOutOfIsr)} of its ${problems.brokerPartitions} partition(s)`,
              ]
                .filter(Boolean)
                .join('; '),
            };
          }),
      );
      return { brokerId, durationMs, ...value };
    },
  };
}
