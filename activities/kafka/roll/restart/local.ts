import { ApplicationFailure } from '@temporalio/activity';
import * as localStack from '../../../../localStack';
import type { Config } from '../../../../contracts/config';
import { configPath } from '../../../../workers/config';
import { Failure } from '../../../../contracts/failures';
import { POLL_MS, heartbeatIfInActivity } from '../heartbeat';
import { brokerTimeout, seconds, withDeadline } from '../timeouts';
import type { BrokerRestartBackend } from './backend';

/** Kafka's tools from the local stack's jars, for a cluster without kafka.toolsDir. */
export { runKafkaTool } from '../../../../localStack';

/** The local stack's own broker control: a controlled shutdown of the broker's process, and its start. */
export function localBackend(config: Config): BrokerRestartBackend {
  const roll = config.kafka.roll;
  /** The worker's validated config, and the file it came from (secret files resolve against it). */
  const stackOptions = () => ({ config: { config, path: configPath() } });

  return {
    async stop(brokerId) {
      await localStep(brokerId, localStack.stopBroker(brokerId, stackOptions()), roll.brokerGoneTimeoutSeconds, 'to shut down', Failure.BrokerStopFailed);
      return 'processStopped';
    },
    async start(brokerId) {
      await localStep(
        brokerId,
        localStack.startBroker(brokerId, stackOptions()),
        roll.brokerBackTimeoutSeconds,
        'to start and rejoin the cluster metadata',
        Failure.BrokerStartFailed,
      );
      return 'processStarted';
    },
  };
}

/** Bounds a local-stack call, heartbeating; a failure or the timeout becomes an ApplicationFailure naming the broker. */
async function localStep(brokerId: number, step: Promise<void>, timeoutSeconds: number, waitingFor: string, failureType: string): Promise<void> {
  // If the timeout wins, the stack's own call goes on (it has its own, longer, limit); its
  // eventual failure must not become an unhandled rejection.
  step.catch(() => undefined);
  const started = Date.now();
  const beat = setInterval(() => heartbeatIfInActivity({ brokerId, waitingFor, elapsedMs: Date.now() - started, last: 'local stack' }), POLL_MS);
  try {
    const outcome = await withDeadline(step, timeoutSeconds * 1000);
    if (outcome.timedOut) throw brokerTimeout(brokerId, waitingFor, timeoutSeconds, Date.now() - started, 'the local stack had not finished');
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    throw ApplicationFailure.create({
      message: `broker ${brokerId}: failed after ${seconds(Date.now() - started)} s waiting for it ${waitingFor} (timeout ${timeoutSeconds} s): ${(err as Error).message}`,
      type: failureType,
      nonRetryable: true,
      details: [{ brokerId, waitingFor, timeoutSeconds, waitedMs: Date.now() - started }],
    });
  } finally {
    clearInterval(beat);
  }
}
