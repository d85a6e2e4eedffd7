import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NativeConnection, Worker, type ActivityInterceptorsFactory, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { whileAlive } from '../activities/common/heartbeat';
import { outputTail, runProcess } from '../activities/common/process';
import type { LoadedConfig } from './config';
import { createConnections } from './connections';
import { temporalConnectionOptions } from './temporal';

/** Bundles the workflows in a child process, keeping webpack's memory out of the worker's. */
async function bundleInChildProcess(): Promise<{ codePath: string }> {
  const codePath = path.join(mkdtempSync(path.join(tmpdir(), 'ballast-workflows-')), 'workflow-bundle.js');
  const result = await runProcess(process.execPath, ['--import', 'tsx', path.join(__dirname, 'bundleWorkflows.ts'), codePath]);
  if (result.failed) {
    const how = result.signal ?? `exit ${result.exitCode}`;
    throw new Error(`bundling the workflows failed (${how}): ${outputTail(result.stderr)}`);
  }
  return { codePath };
}

/**
 * Every activity heartbeats while it runs, so a worker that dies is noticed within the workflows'
 * heartbeat timeout (workflows/activityOptions.ts) and its steps go to another worker.
 */
export const livenessHeartbeats: ActivityInterceptorsFactory = (ctx) => ({
  inbound: { execute: (input, next) => whileAlive(ctx, () => next(input)) },
});

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
    workflowBundle: overrides.workflowBundle ?? (await bundleInChildProcess()),
    activities,
    // The SDK sends a heartbeat at most every 80 % of the heartbeat timeout; every 5 s leaves the
    // timeout two missed beats of slack.
    maxHeartbeatThrottleInterval: '5 seconds',
    // A dead worker's cached workflows wait this long on its sticky queue before any worker takes
    // their next task (10 s by default): part of how long a run stalls when a worker dies.
    stickyQueueScheduleToStartTimeout: '3 seconds',
    // The SDK sizes this cache from V8's heap limit, about 2,300 workflows on this machine with no
    // heap cap; ballast runs a handful at once (a backup, a drill, a restore, a roll), and a cache
    // that large only lets memory grow with the number of runs seen.
    maxCachedWorkflows: 100,
    ...overrides,
    interceptors: {
      ...overrides.interceptors,
      activity: [livenessHeartbeats, ...(overrides.interceptors?.activity ?? [])],
    },
  });
  return { worker, connection };
}
