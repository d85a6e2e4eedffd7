import type { Config } from '../workers/config';
import type { Connections } from '../workers/connections';

/** What every activity factory is built from: the validated config and the platform's clients. */
export interface ActivityDeps {
  config: Config;
  connections: Connections;
}

/** The check timeout the input asked for, else the config's, in milliseconds. */
export function checkTimeoutMs(deps: ActivityDeps, timeoutSeconds?: number): number {
  return (timeoutSeconds ?? deps.config.healthCheck.timeoutSeconds) * 1000;
}
