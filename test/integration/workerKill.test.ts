import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { seedPlatform } from '../../scripts/seed';
import { createConnections } from '../../workers/connections';
import type { LoadedConfig } from '../../workers/config';
import { temporalConnectionOptions } from '../../workers/temporal';
import type { drDrill } from '../../workflows/drDrill';
import type { platformBackup } from '../../workflows/platformBackup';
import { RESUME_WITHIN_MS } from '../../workflows/activityOptions';
import { startBarrierKills, type BarrierKills } from '../helpers/barrierKills';
import { objectBytes, readManifest, sha256 } from '../helpers/backupBucket';
import { writeTestConfig } from '../helpers/workerProcess';

/**
 * The barrier kill loop (test/helpers/barrierKills.ts): every activity boundary of the run is a
 * kill point. Each step must start again within 30 s of its worker's death.
 */
describe('a worker SIGKILLed at every activity boundary', () => {
  let loaded: LoadedConfig;
  let s3: S3Client;
  let client: Client;
  let connection: Connection;
  let kills: BarrierKills;

  /** Every activity a run and its child runs scheduled: its workflow id, activity id and type. */
  async function scheduledActivities(handle: WorkflowHandle): Promise<{ workflowId: string; activityId: string; type: string }[]> {
    const history = await handle.fetchHistory();
    const own = history.events!.flatMap((e) => {
      const a = e.activityTaskScheduledEventAttributes;
      return a ? [{ workflowId: handle.workflowId, activityId: a.activityId!, type: a.activityType!.name! }] : [];
    });
    const children = history.events!.flatMap((e) => e.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId ?? []);
    const nested = await Promise.all(children.map((id) => scheduledActivities(client.workflow.getHandle(id))));
    return [...own, ...nested.flat()];
  }

  /**
   * Every attempt of the run's activities that a kill cut short was followed by the next attempt
   * within 30 s of the kill. A first attempt is held at the barrier, so every activity is cut
   * short at least once, unless a kill meant for another took its worker before the barrier
   * recorded it. Returns the slowest resume and the activities held at the barrier.
   */
  async function assertEveryKillResumed(handle: WorkflowHandle): Promise<{ slowest: { type: string; ms: number }; held: Set<string> }> {
    const activities = await scheduledActivities(handle);
    assert.ok(activities.length > 0);
    const attempts = kills.attempts();
    const held = new Set<string>();
    for (const { workflowId, activityId, type } of activities) {
      const name = `${workflowId}.${activityId}`;
      const records = attempts.get(name) ?? [];
      assert.ok(records.length > 0, `${type} (${name}) ran on a barrier worker`);
      if (records[0]!.attempt === 1) held.add(type);
    }
    const names = new Set(activities.map((a) => `${a.workflowId}.${a.activityId}`));
    let slowest = { type: '', ms: -1 };
    for (const resume of kills.resumes().filter((r) => names.has(r.name))) {
      assert.ok(resume.ms <= RESUME_WITHIN_MS, `${resume.type} (${resume.name}) attempt ${resume.attempt} started ${resume.ms} ms after the worker of attempt ${resume.attempt - 1} was killed`);
      if (resume.ms > slowest.ms) slowest = { type: resume.type, ms: resume.ms };
    }
    return { slowest, held };
  }

  before(async () => {
    // One step at a time: each first attempt is held alone, so no kill takes another step's first
    // attempt with it and every kind of step is a kill point (only the health checks run side by side).
    loaded = writeTestConfig({ backup: { concurrency: 1 }, restore: { concurrency: 1 }, drill: { scratchPreApproved: true } });
    const connections = createConnections(loaded.config, loaded.path);
    s3 = connections.s3();
    // The backup holds the seeded platform, topics included; the drill restores that backup.
    await seedPlatform(loaded.config, connections);
    connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
    client = new Client({ connection, namespace: loaded.config.temporal.namespace });
    kills = await startBarrierKills(loaded.path);
  });

  after(async () => {
    await kills?.stop();
    s3?.destroy();
    // The workers created this test's own schedules at start; they must not outlive the test
    // (the nightly one would start backups no worker polls for).
    for (const { scheduleId } of [loaded.config.backup.schedule, loaded.config.drill.schedule]) {
      await client?.schedule.getHandle(scheduleId).delete().catch(() => undefined);
    }
    await connection?.close();
  });

  it('platformBackup goes on within 30 s each time and writes a complete backup whose objects match its manifest', { timeout: 15 * 60_000 }, async () => {
    const handle = await client.workflow.start<typeof platformBackup>('platformBackup', {
      taskQueue: loaded.config.temporal.taskQueue,
      workflowId: `test-kill-backup-${randomUUID()}`,
      args: [{ retention: false }],
    });
    const result = await handle.result();
    assert.equal(result.complete, true, `the backup is complete: lacks ${JSON.stringify(result.lacks)}`);

    const { slowest, held } = await assertEveryKillResumed(handle);
    for (const type of ['planBackup', 'backupPostgresDatabase', 'backupClickHouseTable', 'backupKafkaTopicData', 'backupBucket', 'writeManifest']) {
      assert.ok(held.has(type), `${type} was one of the kill points`);
    }
    console.log(`platformBackup: ${kills.killedAt.size} workers killed so far, slowest resume ${slowest.ms} ms (${slowest.type})`);

    const bucket = loaded.config.objectStore.backupBucket;
    const manifest = await readManifest(s3, bucket, result.backupId);
    for (const piece of manifest.pieces) {
      const bytes = await objectBytes(s3, bucket, piece.key);
      assert.equal(bytes.length, piece.size, `${piece.key}: size`);
      if (piece.sha256) assert.equal(sha256(bytes), piece.sha256, `${piece.key}: sha256`);
    }
  });

  it('drDrill (plan, restore as a child, verification, teardown) goes on within 30 s each time and verifies', { timeout: 20 * 60_000 }, async () => {
    const handle = await client.workflow.start<typeof drDrill>('drDrill', {
      taskQueue: loaded.config.temporal.taskQueue,
      workflowId: `test-kill-drill-${randomUUID()}`,
      args: [{}],
    });
    const result = await handle.result();
    assert.equal(result.report.verified, true, 'the drill\'s restore verified');
    assert.deepEqual(result.teardown.failed, [], 'every scratch target was torn down');

    const { slowest, held } = await assertEveryKillResumed(handle);
    for (const type of ['planRestore', 'restorePostgresDatabase', 'verifyPostgresDatabase', 'writeRestoreReport']) {
      assert.ok(held.has(type), `${type} was one of the kill points`);
    }
    console.log(`drDrill: ${kills.killedAt.size} workers killed in all, slowest resume ${slowest.ms} ms (${slowest.type})`);
  });
});
