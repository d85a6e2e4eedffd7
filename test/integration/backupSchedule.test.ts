import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, ScheduleOverlapPolicy } from '@temporalio/client';
import type { LoadedConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';
import { seedPlatform } from '../../scripts/seed';
import { ensureBackupSchedule } from '../../workers/schedules';
import { temporalConnectionOptions } from '../../workers/temporal';
import type { PlatformBackupResult } from '../../workflows/platformBackup';
import { readManifest } from '../helpers/backupBucket';
import { eventually } from '../helpers/stackWorker';
import { spawnWorker, writeTestConfig, type WorkerProcess } from '../helpers/workerProcess';

describe('the nightly backup schedule', () => {
  let loaded: LoadedConfig;
  let connection: Connection;
  let client: Client;
  let worker: WorkerProcess | undefined;

  before(async () => {
    loaded = writeTestConfig({ backup: { kafkaDataTopics: ['payments'] } });
    // The scheduled run backs up the seeded platform, topics included.
    await seedPlatform(loaded.config, createConnections(loaded.config, loaded.path));
    connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
    client = new Client({ connection, namespace: loaded.config.temporal.namespace });
  });

  after(async () => {
    await worker?.stop();
    await client?.schedule.getHandle(loaded.config.backup.schedule.scheduleId).delete().catch(() => undefined);
    await connection?.close();
  });

  it('exists after the worker starts, and triggering it produces a complete backup', async () => {
    worker = await spawnWorker(loaded.path);
    const { scheduleId, catchupWindowMinutes } = loaded.config.backup.schedule;
    assert.match(worker.output(), new RegExp(`backup schedule "${scheduleId}" created \\(cron "0 2 \\* \\* \\*" UTC\\)`));

    const handle = client.schedule.getHandle(scheduleId);
    const description = await handle.describe();
    assert.equal(description.action.workflowType, 'platformBackup');
    assert.equal(description.action.taskQueue, loaded.config.temporal.taskQueue);
    assert.equal(description.policies.overlap, ScheduleOverlapPolicy.SKIP);
    assert.equal(description.policies.catchupWindow, catchupWindowMinutes * 60_000);
    assert.deepEqual(
      description.spec.calendars?.map((c) => [c.hour, c.minute]),
      [[[{ start: 2, end: 2, step: 1 }], [{ start: 0, end: 0, step: 1 }]]],
      'nightly at 02:00',
    );
    assert.equal(description.state.paused, false);

    await handle.trigger();
    const started = await eventually('the triggered run to start', async () => (await handle.describe()).info.recentActions[0]?.action, 60_000);
    const result = (await client.workflow.getHandle(started.workflow.workflowId, started.workflow.firstExecutionRunId).result()) as PlatformBackupResult;
    const s3 = createConnections(loaded.config, loaded.path).s3();
    try {
      const manifest = await readManifest(s3, loaded.config.objectStore.backupBucket, result.backupId);
      assert.deepEqual(manifest.components.map((c) => c.component).sort(), ['clickhouse', 'kafka', 'objectStore', 'postgres']);
      assert.equal(manifest.workflowId, started.workflow.workflowId);
      assert.equal(manifest.complete, true, 'the scheduled backup holds every configured component');
      assert.equal(manifest.signature?.algorithm, 'HMAC-SHA256');
    } finally {
      s3.destroy();
    }
  });

  it('is updated in place, not duplicated, when the worker starts again with a changed config', async () => {
    const changed = { ...loaded.config, backup: { ...loaded.config.backup, schedule: { ...loaded.config.backup.schedule, cron: '30 3 * * *' } } };
    assert.equal(await ensureBackupSchedule(client, changed), 'updated');
    const description = await client.schedule.getHandle(loaded.config.backup.schedule.scheduleId).describe();
    assert.deepEqual(
      description.spec.calendars?.map((c) => [c.hour, c.minute]),
      [[[{ start: 3, end: 3, step: 1 }], [{ start: 30, end: 30, step: 1 }]]],
    );
  });
});
