import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
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
import type { BarrierRecord } from '../helpers/barrierWorker';
import { objectBytes, readManifest, sha256 } from '../helpers/backupBucket';
import { workflowBundle } from '../helpers/workflowEnv';
import { spawnWorker, writeTestConfig, type WorkerProcess } from '../helpers/workerProcess';

/**
 * Two barrier workers (test/helpers/barrierWorker.ts) share the run. The first attempt of every
 * activity stops at the barrier; the test SIGKILLs the worker holding it at once and starts a
 * replacement, so every activity boundary of the run is a kill point and there is always a live
 * worker to take the step up. Each step must start again within 30 s of its worker's death.
 */
describe('a worker SIGKILLed at every activity boundary', () => {
  let loaded: LoadedConfig;
  let s3: S3Client;
  let client: Client;
  let connection: Connection;
  let barrierDir: string;
  let bundleFile: string;
  const workers = new Set<WorkerProcess>();
  const killedAt = new Map<number, number>();
  const handled = new Set<string>();
  const replacements: Promise<void>[] = [];
  let watching: NodeJS.Timeout | undefined;

  const startWorker = async () => {
    const worker = await spawnWorker(loaded.path, {
      command: [process.execPath, '--import', 'tsx', 'test/helpers/barrierWorker.ts'],
      env: { BALLAST_TEST_BARRIER_DIR: barrierDir, BALLAST_TEST_WORKFLOW_BUNDLE: bundleFile },
    });
    workers.add(worker);
    void worker.child.once('exit', () => workers.delete(worker));
  };

  const readRecord = (file: string) => JSON.parse(readFileSync(path.join(barrierDir, file), 'utf8')) as BarrierRecord;

  /** Kills the worker behind each new held first attempt (unless it is dead already) and starts a replacement. */
  const killHolders = () => {
    for (const file of readdirSync(barrierDir)) {
      if (!file.startsWith('attempt.') || !file.endsWith('.1.json') || handled.has(file)) continue;
      handled.add(file);
      const { pid } = readRecord(file);
      if (killedAt.has(pid)) continue;
      killedAt.set(pid, Date.now());
      process.kill(pid, 'SIGKILL');
      replacements.push(startWorker());
    }
  };

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
    const attempts = new Map<string, BarrierRecord[]>();
    for (const file of readdirSync(barrierDir).filter((f) => f.startsWith('attempt.'))) {
      const record = readRecord(file);
      const name = `${record.workflowId}.${record.activityId}`;
      attempts.set(name, [...(attempts.get(name) ?? []), record].sort((x, y) => x.attempt - y.attempt));
    }
    let slowest = { type: '', ms: -1 };
    const held = new Set<string>();
    for (const { workflowId, activityId, type } of activities) {
      const name = `${workflowId}.${activityId}`;
      const records = attempts.get(name) ?? [];
      assert.ok(records.length > 0, `${type} (${name}) ran on a barrier worker`);
      if (records[0]!.attempt === 1) held.add(type);
      for (let i = 0; i + 1 < records.length; i++) {
        const killed = killedAt.get(records[i]!.pid);
        // An attempt whose worker was killed only after the next attempt began had ended on its own.
        if (killed === undefined || killed > records[i + 1]!.at) continue;
        const ms = records[i + 1]!.at - killed;
        assert.ok(ms <= RESUME_WITHIN_MS, `${type} (${name}) attempt ${records[i + 1]!.attempt} started ${ms} ms after the worker of attempt ${records[i]!.attempt} was killed`);
        if (ms > slowest.ms) slowest = { type, ms };
      }
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
    barrierDir = mkdtempSync(path.join(tmpdir(), 'ballast-barrier-'));
    // One bundle for every worker the test starts: bundling in each would slow every replacement.
    bundleFile = path.join(barrierDir, 'workflow-bundle.js');
    writeFileSync(bundleFile, (await workflowBundle()).code);
    await Promise.all([startWorker(), startWorker()]);
    watching = setInterval(killHolders, 100);
  });

  after(async () => {
    clearInterval(watching);
    await Promise.allSettled(replacements);
    await Promise.allSettled([...workers].map((w) => w.kill()));
    rmSync(barrierDir, { recursive: true, force: true });
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
    console.log(`platformBackup: ${killedAt.size} workers killed so far, slowest resume ${slowest.ms} ms (${slowest.type})`);

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
    console.log(`drDrill: ${killedAt.size} workers killed in all, slowest resume ${slowest.ms} ms (${slowest.type})`);
  });
});
