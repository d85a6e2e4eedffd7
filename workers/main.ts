import { Runtime } from '@temporalio/worker';
import { ConfigError, loadConfig } from './config';
import { createWorker } from './worker';

/**
 * The worker process. The SDK's runtime turns SIGINT and SIGTERM into a graceful shutdown: polling
 * stops, running activities get their shutdown grace, and `run()` resolves.
 */
async function main(): Promise<void> {
  Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const loaded = loadConfig();
  const { config } = loaded;
  const { worker, connection } = await createWorker(loaded);
  console.log(
    `ballast worker: task queue "${config.temporal.taskQueue}", namespace "${config.temporal.namespace}", ` +
      `Temporal at ${config.temporal.address}, environment "${config.environment}", config ${loaded.path}`,
  );
  try {
    await worker.run();
  } finally {
    await connection.close();
  }
  console.log('ballast worker: shut down cleanly');
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  console.error('ballast worker failed:', err);
  process.exit(1);
});
