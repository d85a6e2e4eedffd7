import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type { BackupPlanRequest } from '../../contracts/backupTypes';
import type { MaintenancePlan, MaintenanceReport, MaintenanceSettings, MaintenanceStep, StepAttempt } from '../../contracts/maintenanceTypes';
import type { MaintenanceWindow } from '../../contracts/maintenanceWindow';
import { approveUpdate, rejectUpdate } from '../../workflows/approval';
import { compactionStatusQuery, type CompactionInput } from '../../workflows/compaction';
import { abortSignal, pauseSignal, resumeSignal } from '../../workflows/runControls';
import { eventually } from '../helpers/stackWorker';
import { createTestEnvironment, workflowBundle } from '../helpers/workflowEnv';

// Fake activities stand in for the systems: the point is the workflow's window, approval, pause
// and abort logic. test/integration/compaction.test.ts runs the real steps on the real stack.

const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
/** A daily window that contains the test's now (opened an hour ago, three hours long). */
const openNow = (): MaintenanceWindow => ({ start: hhmm(Date.now() - 3_600_000), durationMinutes: 180, days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] });
/** A daily window that opens two hours from now and lasts one hour: now is outside it. */
const closedNow = (): MaintenanceWindow => ({ start: hhmm(Date.now() + 2 * 3_600_000), durationMinutes: 60, days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] });

const merge = (n: number): MaintenanceStep => ({
  kind: 'merge',
  id: `clickhouse:merge:db.t:${n}`,
  summary: `merge db.t partition ${n}`,
  database: 'db',
  table: 't',
  engine: 'MergeTree',
  partitionId: String(n),
  partition: String(n),
  final: true,
  changesRows: false,
  maxParts: 1,
  before: { parts: 5, rows: 100, bytes: 1000 },
});
const drop = (n: number, table = 't'): MaintenanceStep => ({
  kind: 'drop',
  destructive: 'partitionDrop',
  id: `clickhouse:drop:db.${table}:${n}`,
  summary: `DROP partition ${n} of db.${table}`,
  database: 'db',
  table,
  partitionId: String(n),
  partition: String(n),
  before: { parts: 1, rows: 10, bytes: 100 },
});

interface Systems {
  window: MaintenanceWindow;
  steps: MaintenanceStep[];
  preApproved?: MaintenanceSettings['preApproved'];
  /** Each step takes this long. */
  stepMs?: number;
  /** Busy answers before the server is free. */
  busyFor?: number;
  busyWaitSeconds?: number;
  ran: { id: string; at: number }[];
  /** maintenance.backupBeforeDrop; what the child platformBackup's plan and pieces were asked for. */
  backupBeforeDrop?: boolean;
  backupAsked?: { plan?: BackupPlanRequest; pieces: unknown[]; dropsRanBefore?: number };
}

function fakes(s: Systems): Partial<Activities> {
  let busy = s.busyFor ?? 0;
  /** The step's own load check comes first: while the fake server is busy, it does nothing. */
  const did = async (step: MaintenanceStep): Promise<StepAttempt> => {
    if (busy-- > 0) return { busy: 'fake merges running' };
    s.ran.push({ id: step.id, at: Date.now() });
    await new Promise((r) => setTimeout(r, s.stepMs ?? 0));
    return { id: step.id, kind: step.kind, summary: step.summary, outcome: 'done', bytesReclaimed: 10 };
  };
  const plan: MaintenancePlan = { hash: `sha256:${'a'.repeat(64)}`, plannedAt: new Date().toISOString(), clickhouse: { server: 'fake', partitions: [], rowDeletes: [] }, postgres: [], postgresPartitions: [], kafka: [], kafkaRecordDeletes: [], buckets: [], steps: s.steps };
  return {
    maintenanceSettings: async () => ({
      window: s.window,
      approval: { unsignedAllowed: true, approvers: ['bob'], fourEyes: true, reminderAfterMinutes: 15, timeoutMinutes: 60 },
      preApproved: s.preApproved ?? [],
      backupBeforeDrop: s.backupBeforeDrop ?? false,
      busyWaitSeconds: s.busyWaitSeconds ?? 60,
      mergeTimeoutSeconds: 60,
    }),
    planMaintenance: async () => plan,
    writeMaintenanceReport: async (r: MaintenanceReport) => r.reportKey,
    runOrigin: async () => ({ requester: 'alice' }),
    notify: (async () => ({ delivered: 'log' })) as never,
    clickhouseMergeProgress: async () => ({ progress: 0.5, elapsedSeconds: 1 }),
    mergeClickHousePartition: (async ({ step }: { step: MaintenanceStep }) => did(step)) as never,
    dropClickHousePartition: (async ({ step }: { step: MaintenanceStep }) => did(step)) as never,
    // The child platformBackup's activities, for backupBeforeDrop: healthy systems, the plan the
    // real planBackup would make of the request, and a manifest.
    checkClickHouse: (async () => ({ system: 'clickhouse', healthy: true, figures: {} })) as never,
    checkObjectStore: (async () => ({ system: 'objectStore', healthy: true, figures: {} })) as never,
    planBackup: (async (request: BackupPlanRequest) => {
      s.backupAsked!.plan = request;
      const tasks = Object.entries(request.clickhousePartitions ?? {}).map(([name, partitions]) => {
        const [database, table] = name.split('.') as [string, string];
        return { component: 'clickhouse', kind: 'clickhouseTable', database, table, partitions };
      });
      return { backupBucket: 'b', concurrency: 2, environment: 'staging', tasks, narrowed: [{ component: 'clickhouse', reason: 'partitions' }] };
    }) as never,
    backupClickHouseTable: (async (request: unknown) => {
      s.backupAsked!.pieces.push(request);
      s.backupAsked!.dropsRanBefore = s.ran.filter((r) => r.id.includes(':drop:')).length;
      return { component: 'clickhouse', unit: 'u', key: 'k', sha256: 's', pieces: 1, bytes: 1, rows: 1, messages: 0, resumed: false };
    }) as never,
    writeManifest: (async () => ({ consistencyPoint: new Date().toISOString(), components: [], lacks: [{ component: 'clickhouse', reason: 'partitions' }], totals: { pieces: 2, bytes: 2, rows: 2, messages: 0 } })) as never,
  };
}

describe('compaction workflow (fake activities)', () => {
  let env: TestWorkflowEnvironment;
  let alice: Client;
  before(async () => {
    env = await createTestEnvironment();
    alice = new Client({ connection: env.connection, identity: 'alice' });
  });
  after(async () => {
    await env?.teardown();
  });

  async function withWorker<T>(systems: Systems, fn: (taskQueue: string) => Promise<T>): Promise<T> {
    const taskQueue = `test-${randomUUID()}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities: fakes(systems) });
    return worker.runUntil(fn(taskQueue));
  }
  const start = (taskQueue: string, input: CompactionInput = {}) => alice.workflow.start('compaction', { taskQueue, workflowId: `cmp-${randomUUID()}`, args: [input] });
  const waitingForApproval = (handle: WorkflowHandle) =>
    eventually('the approval ask', async () => {
      const s = await handle.query(compactionStatusQuery);
      return s.approval ? s : undefined;
    }, 10_000, 50);

  it('a dry run returns the plan and runs no step', async () => {
    const systems: Systems = { window: openNow(), steps: [merge(1), drop(2)], ran: [] };
    const report = (await withWorker(systems, async (tq) => (await start(tq, { dryRun: true })).result())) as MaintenanceReport;
    assert.equal(report.outcome, 'dry run');
    assert.equal(report.plan.steps.length, 2);
    assert.deepEqual(systems.ran, []);
    assert.deepEqual(report.left.map((l) => l.id), [merge(1).id, drop(2).id]);
  });

  it('outside the window it starts no step and lists them all as left', async () => {
    const systems: Systems = { window: closedNow(), steps: [merge(1), merge(2)], ran: [] };
    const report = (await withWorker(systems, async (tq) => (await start(tq)).result())) as MaintenanceReport;
    assert.equal(report.outcome, 'window closed');
    assert.deepEqual(systems.ran, []);
    assert.equal(report.left.length, 2);
  });

  it('starts no step after stopBy: the run ends "window closed" listing what is left', async () => {
    const systems: Systems = { window: openNow(), steps: [1, 2, 3, 4, 5, 6].map(merge), stepMs: 1500, ran: [] };
    let stopBy = 0;
    // The clock starts once the worker runs: building its bundle may take seconds on a loaded machine.
    const report = (await withWorker(systems, async (tq) => {
      stopBy = Date.now() + 5000;
      return (await start(tq, { stopBy: new Date(stopBy).toISOString() })).result();
    })) as MaintenanceReport;
    assert.equal(report.outcome, 'window closed');
    assert.ok(systems.ran.length >= 1 && systems.ran.length < 6, `${systems.ran.length} steps ran`);
    assert.ok(systems.ran.every((r) => r.at < stopBy), 'no step started after the close');
    assert.equal(report.left.length, 6 - systems.ran.length);
    assert.deepEqual([...report.steps.map((s) => s.id), ...report.left.map((l) => l.id)], [1, 2, 3, 4, 5, 6].map((n) => merge(n).id));
  });

  it('merges run while the drop waits for approval; a rejection drops nothing', async () => {
    const systems: Systems = { window: openNow(), steps: [merge(1), drop(2)], ran: [] };
    const report = (await withWorker(systems, async (tq) => {
      const handle = await start(tq);
      const status = await waitingForApproval(handle);
      assert.deepEqual(status.approval!.plan.actions, [drop(2).summary], 'only the destructive step is to approve');
      await eventually('the merge, without waiting', async () => (systems.ran.length === 1 ? true : undefined), 10_000, 50);
      assert.equal(await handle.executeUpdate(rejectUpdate, { args: [{ plan: status.approval!.plan.hash, by: 'bob', reason: 'not tonight' }] }), 'rejected by bob');
      return handle.result();
    })) as MaintenanceReport;
    assert.deepEqual(systems.ran.map((r) => r.id), [merge(1).id]);
    assert.equal(report.approval?.outcome, 'rejected');
    const dropped = report.steps.find((s) => s.id === drop(2).id)!;
    assert.equal(dropped.outcome, 'skipped');
    assert.match(dropped.reason!, /not approved: rejected by bob/);
  });

  it('an approval of the plan hash lets the drop run; the requester cannot approve it (four-eyes)', async () => {
    const systems: Systems = { window: openNow(), steps: [drop(2)], ran: [] };
    const report = (await withWorker(systems, async (tq) => {
      const handle = await start(tq);
      const status = await waitingForApproval(handle);
      const refusedBecause = (pattern: RegExp) => (err: unknown) => pattern.test(String((err as Error).cause));
      await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ plan: status.approval!.plan.hash, by: 'alice', reason: 'mine' }] }), refusedBecause(/alice is not an approver/));
      await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ plan: `sha256:${'b'.repeat(64)}`, by: 'bob', reason: 'other plan' }] }), refusedBecause(/waits on plan/));
      assert.deepEqual(systems.ran, [], 'nothing dropped before the approval');
      await handle.executeUpdate(approveUpdate, { args: [{ plan: status.approval!.plan.hash, by: 'bob', reason: 'old data' }] });
      return handle.result();
    })) as MaintenanceReport;
    assert.equal(report.outcome, 'completed');
    assert.equal(report.approval?.outcome, 'approved');
    assert.equal(report.approval?.by, 'bob');
    assert.deepEqual(systems.ran.map((r) => r.id), [drop(2).id]);
  });

  it('a pre-approved class runs without a person, and the report says by which rule', async () => {
    const systems: Systems = { window: openNow(), steps: [drop(2)], preApproved: ['partitionDrop'], ran: [] };
    const report = (await withWorker(systems, async (tq) => (await start(tq)).result())) as MaintenanceReport;
    assert.equal(report.approval?.outcome, 'pre-approved');
    assert.match(report.approval!.reason!, /maintenance.preApproved: partitionDrop/);
    assert.deepEqual(systems.ran.map((r) => r.id), [drop(2).id]);
  });

  it('backupBeforeDrop backs up exactly the partitions to drop, before the first drop, and the report names the backup', async () => {
    const systems: Systems = { window: openNow(), steps: [merge(1), drop(2), drop(3), drop(4, 'u')], preApproved: ['partitionDrop'], ran: [], backupBeforeDrop: true, backupAsked: { pieces: [] } };
    const report = (await withWorker(systems, async (tq) => (await start(tq)).result())) as MaintenanceReport;
    assert.equal(report.outcome, 'completed');
    const partitions = { 'db.t': ['2', '3'], 'db.u': ['4'] };
    assert.deepEqual(systems.backupAsked!.plan?.clickhousePartitions, partitions);
    assert.deepEqual(systems.backupAsked!.plan?.clickhouseTables, ['db.t', 'db.u']);
    assert.deepEqual(systems.backupAsked!.plan?.components, ['clickhouse']);
    assert.deepEqual(
      systems.backupAsked!.pieces.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        { backupId: report.backupId, database: 'db', table: 't', partitions: ['2', '3'] },
        { backupId: report.backupId, database: 'db', table: 'u', partitions: ['4'] },
      ],
    );
    assert.equal(systems.backupAsked!.dropsRanBefore, 0, 'backed up before the first drop');
    assert.match(report.backupId!, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(report.backupPartitions, partitions);
    assert.deepEqual(systems.ran.map((r) => r.id), [merge(1).id, drop(2).id, drop(3).id, drop(4, 'u').id]);
  });

  it('backupBeforeDrop: when the backup fails, nothing is dropped', async () => {
    const systems: Systems = { window: openNow(), steps: [drop(2)], preApproved: ['partitionDrop'], ran: [], backupBeforeDrop: true, backupAsked: { pieces: [] } };
    const fail = fakes(systems);
    fail.planBackup = (async () => {
      throw ApplicationFailure.nonRetryable('platformBackup: invalid input: input.clickhousePartitions.db.t.0: partition "2" of db.t does not exist', 'InvalidInput');
    }) as never;
    const taskQueue = `test-${randomUUID()}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities: fail });
    const report = (await worker.runUntil(async () => (await start(taskQueue)).result())) as MaintenanceReport;
    assert.deepEqual(systems.ran, [], 'nothing dropped');
    assert.equal(report.backupId, undefined);
    assert.match(report.steps[0]!.reason!, /backupBeforeDrop: the backup failed .*input\.clickhousePartitions\.db\.t\.0.*not dropped/);
  });

  it('waits while the server is busy, then runs the step', async () => {
    const systems: Systems = { window: openNow(), steps: [merge(1)], busyFor: 1, ran: [] };
    const report = (await withWorker(systems, async (tq) => {
      const handle = await start(tq);
      await eventually('the busy wait', async () => ((await handle.query(compactionStatusQuery)).phase === 'waiting: server busy' ? true : undefined), 10_000, 50);
      return handle.result();
    })) as MaintenanceReport;
    assert.equal(report.steps[0]!.outcome, 'done');
  });

  it('skips a step whose server stays busy past busyWaitSeconds, saying why, and goes on with the next', async () => {
    const systems: Systems = { window: openNow(), steps: [merge(1), merge(2)], busyFor: 1, busyWaitSeconds: 0, ran: [] };
    const report = (await withWorker(systems, async (tq) => (await start(tq)).result())) as MaintenanceReport;
    assert.deepEqual(
      report.steps.map((r) => [r.id, r.outcome]),
      [
        [merge(1).id, 'skipped'],
        [merge(2).id, 'done'],
      ],
    );
    assert.equal(report.steps[0]!.reason, 'the server stayed busy for 0 s: fake merges running');
    assert.deepEqual(systems.ran.map((r) => r.id), [merge(2).id], 'the busy step did nothing');
  });

  it('pauses before the next step, resumes, and an abort stops with the rest left', async () => {
    // Steps long enough that the abort, sent as one starts, arrives before it ends.
    const systems: Systems = { window: openNow(), steps: [1, 2, 3].map(merge), stepMs: 1500, ran: [] };
    const report = (await withWorker(systems, async (tq) => {
      const handle = await start(tq);
      await handle.signal(pauseSignal, { by: 'carol' });
      await eventually('the pause', async () => ((await handle.query(compactionStatusQuery)).phase === 'paused' ? true : undefined), 10_000, 50);
      const ranWhilePaused = systems.ran.length;
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(systems.ran.length, ranWhilePaused, 'no step starts while paused');
      await handle.signal(resumeSignal, { by: 'carol' });
      await eventually('a step after the resume', async () => (systems.ran.length > ranWhilePaused ? true : undefined), 10_000, 20);
      await handle.signal(abortSignal, { by: 'carol', reason: 'enough' });
      return handle.result();
    })) as MaintenanceReport;
    assert.equal(report.outcome, 'aborted');
    assert.equal(report.abortedBy, 'carol: enough');
    assert.ok(report.left.length >= 1 && report.left.length < 3, `${report.left.length} left`);
  });
});
