import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { LoadedConfig } from './config';
import { createConnections } from './connections';
import { temporalConnectionOptions } from './temporal';

/** Where the worker finds the workflow code it bundles. */
export const workflowsPath = require.resolve('../workflows');

/**
 * Creates the ballast worker: every workflow and every activity, on the configured task queue.
 * `overrides` lets tests reuse a pre-built workflow bundle or another task queue.
 */
export async function createWorker(
  loaded: LoadedConfig,
  overrides: Partial<WorkerOptions> = {},
): Promise<{ worker: Worker; connection: NativeConnection }> {
  const { config, path: configFile } = loaded;
  const connection = await NativeConnection.connect(temporalConnectionOptions(config, configFile));
  const activities = createActivities({ config, connections: createConnections(config, configFile) });
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...(overrides.workflowBundle ? {} : { workflowsPath }),
    activities,
    ...overrides,
  });
  return { worker, connection };
}
