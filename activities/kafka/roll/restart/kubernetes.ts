import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Config } from '../../../../contracts/config';
import { Failure } from '../../../../contracts/failures';
import { POLL_MS } from '../heartbeat';
import { brokerTimeout } from '../timeouts';
import type { BrokerRestartBackend } from './backend';
import { restartCommandFor, runBackendCommand } from './brokerCommand';

/** The broker's pod deleted (`kubectl delete pod`, which waits for the deletion), then waited for until Ready. */
export function kubernetesBackend(config: Config): BrokerRestartBackend {
  const roll = config.kafka.roll;
  return {
    // Not async, like the command backend's: the argv is built before the caller starts watching.
    stop(brokerId) {
      const argv = restartCommandFor(config, brokerId);
      if (!argv) throw new Error('unreachable: a non-local backend without a command');
      return runBackendCommand(brokerId, argv.stop, roll.brokerGoneTimeoutSeconds, 'its pod to be deleted').then(() => 'podDeleted' as const);
    },
    async start(brokerId) {
      const started = Date.now();
      const timeoutSeconds = roll.brokerBackTimeoutSeconds;
      const argv = restartCommandFor(config, brokerId);
      if (!argv?.start) throw new Error('unreachable: kubernetes backend without a wait command');
      // Right after the delete the StatefulSet may not have created the new pod yet: kubectl wait
      // answers NotFound, which is retried until the timeout.
      const deadline = started + timeoutSeconds * 1000;
      for (;;) {
        const remainingSeconds = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
        try {
          await runBackendCommand(brokerId, argv.start, remainingSeconds + 10, 'its pod to be Ready');
          return 'podReady';
        } catch (err) {
          const notFound = err instanceof ApplicationFailure && err.type === Failure.RestartCommandFailed && /NotFound|not found/i.test(err.message);
          if (!notFound) throw err;
          if (Date.now() >= deadline) throw brokerTimeout(brokerId, 'its pod to be created and Ready', timeoutSeconds, Date.now() - started, err.message);
          await Context.current().sleep(POLL_MS);
        }
      }
    },
  };
}
