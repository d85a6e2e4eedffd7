import { Client, Connection } from '@temporalio/client';
import { Runtime } from '@temporalio/worker';
import { ConfigError, loadConfig } from './config';
import { ensureBackupSchedule, ensureDrillSchedule, ensureMaintenanceSchedule } from './schedules';
import { temporalConnectionOptions } from './temporal';
import { createWorker } from './worker';

/**
 * The worker process. It creates or updates the nightly backup schedule, then polls. The SDK's
 * runtime turns SIGINT and SIGTERM into a graceful shutdown: polling stops, running activities
 * get their shutdown grace, and `run()` resolves.
 */
async function main(): Promise<void> {
  Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const loaded = loadConfig();
  const { config } = loaded;
  const { worker, connection } = await createWorker(loaded);

  const clientConnection = await Connection.connect(temporalConnectionOptions(config, loaded.path));
  try {
    const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
    const outcome = await ensureBackupSchedule(client, config);
    const { scheduleId, cron, enabled } = config.backup.schedule;
    console.log(`ballast worker: backup schedule "${scheduleId}" ${outcome} (${enabled ? `cron "${cron}" UTC` : 'paused'})`);
    const drill = config.drill.schedule;
    const drillOutcome = await ensureDrillSchedule(client, config);
    console.log(`ballast worker: drill schedule "${drill.scheduleId}" ${drillOutcome} (${drill.enabled ? `cron "${drill.cron}" UTC` : 'paused'})`);
    const maintenance = config.maintenance;
    const maintenanceOutcome = await ensureMaintenanceSchedule(client, config);
    console.log(`ballast worker: maintenance schedule "${maintenance.schedule.scheduleId}" ${maintenanceOutcome} (window ${maintenance.window.start} UTC for ${maintenance.window.durationMinutes} min)`);
  } finally {
    await clientConnection.close();
  }

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
  // Every task has finished or been handed back to Temporal by now. A library handle left open
  // (a Kafka client an activity did not close) must not keep a stopped worker alive: a fresh
  // clone's test run once hung for minutes on exactly that, with the worker already shut down.
  process.exit(0);
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  console.error('ballast worker failed:', err);
  process.exit(1);
});
