import { Client, Connection } from '@temporalio/client';
import { Runtime } from '@temporalio/worker';
import { configuredComponents } from '../activities/backup/completeness';
import { newestCompleteBackup } from '../activities/backup/catalog';
import { getJson, listKeys } from '../activities/storage/backupObjects';
import type { RestoreReport } from '../contracts/restoreTypes';
import { runsWaitingForApproval } from './approvalsWaiting';
import { ConfigError, loadConfig, type LoadedConfig } from './config';
import { createConnections } from './connections';
import { createBallastMetrics, serveMetrics, type BallastMetrics } from './metrics';
import { ensureBackupSchedule, ensureDemoResetSchedule, ensureDrillSchedule, ensureMaintenanceSchedule } from './schedules';
import { temporalConnectionOptions } from './temporal';
import { createWorker } from './worker';

/**
 * The worker process. It creates or updates the nightly backup schedule, then polls. The SDK's
 * runtime turns SIGINT and SIGTERM into a graceful shutdown: polling stops, running activities
 * get their shutdown grace, and `run()` resolves.
 */
async function main(): Promise<void> {
  const loaded = loadConfig();
  const { config } = loaded;
  const { host, sdkPort } = config.metrics;
  Runtime.install({
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    ...(sdkPort ? { telemetryOptions: { metrics: { prometheus: { bindAddress: `${host}:${sdkPort}` } } } } : {}),
  });
  const metrics = createMetrics(loaded);
  const { worker, connection } = await createWorker(loaded, { sinks: metrics.sinks });
  const metricsServer = await metrics.serve();

  const clientConnection = await Connection.connect(temporalConnectionOptions(config, loaded.path));
  try {
    const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
    const outcome = await ensureBackupSchedule(client, config);
    const { scheduleId, cron, enabled } = config.backup.schedule;
    console.log(`ballast worker: backup schedule "${scheduleId}" ${outcome} (${enabled ? `cron "${cron}" UTC` : 'paused'})`);
    const drill = config.drill.schedule;
    const drillOutcome = await ensureDrillSchedule(client, config);
    console.log(`ballast worker: drill schedule "${drill.scheduleId}" ${drillOutcome} (${drill.enabled ? `cron "${drill.cron}" UTC` : 'paused'})`);
    const demo = config.demoReset.schedule;
    const demoOutcome = await ensureDemoResetSchedule(client, config);
    if (demo) console.log(`ballast worker: demo reset schedule "${demo.scheduleId}" ${demoOutcome} (${demo.enabled ? `cron "${demo.cron}" UTC` : 'paused'})`);
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
    await metricsServer?.close();
    await connection.close();
  }
  console.log('ballast worker: shut down cleanly');
  // Every task has finished or been handed back to Temporal by now. A library handle left open
  // (a Kafka client an activity did not close) must not keep a stopped worker alive: a fresh
  // clone's test run once hung for minutes on exactly that, with the worker already shut down.
  process.exit(0);
}

/** The worker's metrics (metrics.port), read from the bucket and from Temporal when scraped. */
function createMetrics(loaded: LoadedConfig): BallastMetrics & { serve(): Promise<{ close(): Promise<void> } | undefined> } {
  const { config } = loaded;
  const connections = createConnections(config, loaded.path);
  let client: Promise<Client> | undefined;
  const temporalClient = () =>
    (client ??= Connection.connect(temporalConnectionOptions(config, loaded.path)).then((c) => new Client({ connection: c, namespace: config.temporal.namespace })));
  const metrics = createBallastMetrics({
    backupBucket: config.objectStore.backupBucket,
    async newestCompleteBackup() {
      const s3 = connections.s3(10_000);
      try {
        return await newestCompleteBackup(s3, config.objectStore.backupBucket, configuredComponents(config));
      } finally {
        s3.destroy();
      }
    },
    async lastRestoreReport(kind) {
      const s3 = connections.s3(10_000);
      try {
        const key = (await listKeys(s3, config.objectStore.backupBucket, `reports/${kind === 'drill' ? 'drills' : 'restores'}/`)).sort().at(-1);
        return key ? await getJson<RestoreReport>(s3, config.objectStore.backupBucket, key) : undefined;
      } finally {
        s3.destroy();
      }
    },
    async approvalsWaiting() {
      return runsWaitingForApproval(await temporalClient(), config.temporal.taskQueue, new Date());
    },
  });
  return {
    ...metrics,
    async serve() {
      const { port, host, sdkPort } = config.metrics;
      if (!port) return undefined;
      const server = await serveMetrics({ host, port, metrics, sdkMetricsUrl: sdkPort ? `http://${host}:${sdkPort}/metrics` : undefined });
      console.log(`ballast worker: metrics on http://${host}:${port}/metrics${sdkPort ? ` (with the Temporal SDK's, exported on ${host}:${sdkPort})` : ''}`);
      return {
        async close() {
          await new Promise<void>((resolve) => server.close(() => resolve()));
          if (client) await (await client).connection.close();
        },
      };
    },
  };
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  console.error('ballast worker failed:', err);
  process.exit(1);
});
