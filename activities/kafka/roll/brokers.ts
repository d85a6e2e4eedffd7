import { ApplicationFailure } from '@temporalio/activity';
import { backOff } from 'exponential-backoff';
import { Failure } from '../../../contracts/failures';
import type { ActivityDeps } from '../../deps';
import { brokerOf, type BrokerInput } from './brokerInput';
import { createClusterReader, type KafkaClusterState } from './clusterState';
import { runPreferredLeaderElection, type LeaderElectionResult } from './leaderElection';
import { restartBackend } from './restart';
import type { BrokerStartResult, BrokerStopResult, KafkaRestartBackend } from './restart/backend';
import { createBrokerWaits, watchingGone } from './waits';

/**
 * Broker control for the kafkaRollingRestart workflow: the cluster's state (with every topic's
 * effective min.insync.replicas and the KRaft quorum leader, asked with DescribeQuorum), one
 * broker's stop / start / restart through the configured backend, and the waits that follow a
 * restart.
 *
 * How the workflow drives one broker (every backend looks the same to it):
 *
 *   stop  = stopKafkaBroker({ brokerId })     local: controlled shutdown of the stack's process
 *                                             kubernetes: `kubectl delete pod` (waits for deletion)
 *                                             command: the whole restart command (down *and* up)
 *   if (!stop.goneObserved) waitBrokerGone({ brokerId })
 *   startKafkaBroker({ brokerId })            local: start the process
 *                                             kubernetes: `kubectl wait --for=condition=Ready`
 *                                             command: nothing left to do (action 'none')
 *   waitBrokerBack({ brokerId })
 *   waitReplicationRestored({ brokerId })
 *   electPreferredLeaders()                   when roll.preferredLeaderElection
 *
 * stopKafkaBroker watches the cluster metadata while it runs and reports whether it saw the
 * broker leave (goneObserved): with the command backend the broker may already be back when the
 * command returns, so a separate waitBrokerGone could never see it gone. restartKafkaBroker is
 * stop + start in one activity, for callers that need no observation in between.
 *
 * Every wait polls twice a second, heartbeats, and gives up after its timeout with a
 * non-retryable ApplicationFailure of type Failure.BrokerTimeout naming the broker, what was waited
 * for and for how long.
 */

export interface BrokerRestartResult {
  backend: KafkaRestartBackend;
  durationMs: number;
  goneObserved: boolean;
}

export function createKafkaBrokerActivities(deps: ActivityDeps) {
  const { config } = deps;
  const cluster = createClusterReader(deps);
  const restart = restartBackend(config);

  async function stopBroker(brokerId: number): Promise<BrokerStopResult> {
    brokerOf(config, brokerId);
    const backend = config.kafka.restart.backend;
    const started = Date.now();
    const { value: action, goneObserved } = await watchingGone(cluster.onlineBrokers, brokerId, restart.stop(brokerId));
    return { backend, action, durationMs: Date.now() - started, goneObserved };
  }

  async function startBroker(brokerId: number): Promise<BrokerStartResult> {
    brokerOf(config, brokerId);
    const backend = config.kafka.restart.backend;
    const started = Date.now();
    const action = await restart.start(brokerId);
    // 'none' did nothing (the command backend's restart command already brought the broker back).
    return { backend, action, durationMs: action === 'none' ? 0 : Date.now() - started };
  }

  return {
    /** Brokers, every partition with its effective min.insync.replicas, URP/offline counts and the quorum leader. */
    /**
     * `withQuorumLeader: false` skips asking for the quorum leader (a JVM tool start, ~2 s) where
     * the caller does not need it: the pre-flight and the final read of a roll.
     */
    async kafkaClusterState(options: { withQuorumLeader?: boolean } = {}): Promise<KafkaClusterState> {
      const leader = options.withQuorumLeader === false ? Promise.resolve(undefined) : cluster.quorumLeader();
      leader.catch(() => undefined);
      // A topic deleted by someone else between the metadata and the configs read fails the
      // configs read: read again.
      const state = await backOff(() => cluster.readClusterState(), { numOfAttempts: 3, startingDelay: 500, timeMultiple: 2 });
      return { ...state, quorumLeader: await leader };
    },

    /**
     * The KRaft active controller (quorum leader). `via` forces one way of asking (the
     * DescribeQuorum request or Kafka's kafka-metadata-quorum tool); by default the request,
     * and the tool on clusters too old to answer it.
     */
    async describeQuorumLeader(input: { via?: 'api' | 'tool' } = {}): Promise<number> {
      const leader = await cluster.quorumLeader(input?.via);
      if (leader === undefined) {
        throw ApplicationFailure.create({ message: 'the KRaft metadata quorum has no leader (LeaderId -1)', type: Failure.NoQuorumLeader });
      }
      return leader;
    },

    /** Stop + start of one broker through the configured backend, in one activity. */
    async restartKafkaBroker(input: BrokerInput): Promise<BrokerRestartResult> {
      brokerOf(config, input?.brokerId);
      const started = Date.now();
      const stop = await stopBroker(input.brokerId);
      await startBroker(input.brokerId);
      return { backend: config.kafka.restart.backend, durationMs: Date.now() - started, goneObserved: stop.goneObserved };
    },

    /** The first half of a restart (see the file comment for what it means per backend). */
    async stopKafkaBroker(input: BrokerInput): Promise<BrokerStopResult> {
      return stopBroker(input?.brokerId);
    },

    /** The second half of a restart (see the file comment for what it means per backend). */
    async startKafkaBroker(input: BrokerInput): Promise<BrokerStartResult> {
      return startBroker(input?.brokerId);
    },

    ...createBrokerWaits(config, cluster),

    /** A preferred leader election on every partition whose preferred replica does not lead. */
    async electPreferredLeaders(): Promise<LeaderElectionResult> {
      return runPreferredLeaderElection(config, cluster.toolTimeoutMs);
    },
  };
}

export type KafkaBrokerActivities = ReturnType<typeof createKafkaBrokerActivities>;
