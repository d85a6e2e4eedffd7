import type { Config } from '../../../../contracts/config';
import type { BrokerRestartBackend } from './backend';
import { restartCommandFor, runBackendCommand } from './brokerCommand';

/** kafka.restart.command run per broker: one command that takes the broker down and brings it back. */
export function commandBackend(config: Config): BrokerRestartBackend {
  const roll = config.kafka.roll;
  return {
    // Not async: a config without a command fails at once, before the caller starts watching the cluster.
    stop(brokerId) {
      const argv = restartCommandFor(config, brokerId);
      if (!argv) throw new Error('unreachable: a non-local backend without a command');
      return runBackendCommand(brokerId, argv.stop, roll.brokerGoneTimeoutSeconds + roll.brokerBackTimeoutSeconds, 'the restart command to finish').then(
        () => 'restartCommand' as const,
      );
    },
    async start() {
      return 'none';
    },
  };
}
