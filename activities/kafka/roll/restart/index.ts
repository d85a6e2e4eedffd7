import type { Config } from '../../../../contracts/config';
import type { BrokerRestartBackend } from './backend';
import { commandBackend } from './command';
import { kubernetesBackend } from './kubernetes';
import { localBackend } from './local';

/** The backend kafka.restart.backend names. */
export function restartBackend(config: Config): BrokerRestartBackend {
  switch (config.kafka.restart.backend) {
    case 'local':
      return localBackend(config);
    case 'command':
      return commandBackend(config);
    case 'kubernetes':
      return kubernetesBackend(config);
  }
}
