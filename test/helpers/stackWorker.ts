import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { loadConfig, type LoadedConfig } from '../../workers/config';
import { temporalConnectionOptions } from '../../workers/temporal';
import { createWorker } from '../../workers/worker';
import { workflowBundle } from './workflowEnv';

/**
 * A real ballast worker on the local stack's Temporal server, with the real activities and the
 * committed ballast.yaml, on a task queue of its own so a running `npm start` worker never takes
 * the test's tasks.
 */
export interface StackWorker {
  loaded: LoadedConfig;
  client: Client;
  taskQueue: string;
  worker: Worker;
  /** Stops the worker (it polls from start until then) and closes the connections. */
  close(): Promise<void>;
}

/**
 * `base`: the config to run with (a derived one, say); the committed ballast.yaml by default.
 * `options.shrunkTimeouts`: every activity with a 3 s heartbeat timeout (test/helpers/shrunkTimeouts.ts).
 */
export async function startStackWorker(base: LoadedConfig = loadConfig(), options: { shrunkTimeouts?: boolean } = {}): Promise<StackWorker> {
  const taskQueue = `ballast-test-${randomUUID()}`;
  const loaded: LoadedConfig = { ...base, config: { ...base.config, temporal: { ...base.config.temporal, taskQueue } } };
  const { worker, connection: nativeConnection } = await createWorker(loaded, { workflowBundle: await workflowBundle(options) });
  const connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
  const client = new Client({ connection, namespace: loaded.config.temporal.namespace });
  // A Worker runs once: it polls for the whole suite, and close() ends it.
  const running = worker.run();
  return {
    loaded,
    client,
    taskQueue,
    worker,
    async close() {
      worker.shutdown();
      await running;
      await connection.close();
      await nativeConnection.close();
    },
  };
}

export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 90_000,
  intervalMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
