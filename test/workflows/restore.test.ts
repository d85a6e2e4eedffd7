import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type { RestorePlan } from '../../activities/restore/plan';
import type { RestoreSettings } from '../../activities/restore/report';
import { approveSignal, approveUpdate } from '../../workflows/approval';
import { makeBackupId } from '../../contracts/backupId';
import type { BackupPiece } from '../../contracts/backupTypes';
import type { DrDrillResult } from '../../workflows/drDrill';
import { restoreStatusQuery, type RestoreInput } from '../../workflows/restore';
import type { RestoreReport, RestoreStepResult, VerifyResult } from '../../contracts/restoreTypes';
import type { SystemHealth, SystemName } from '../../contracts/healthTypes';
import { eventually } from '../helpers/stackWorker';
import { createTestEnvironment, workflowBundle } from '../helpers/workflowEnv';

// Fake activities: the point here is the gate, the ordering and the reporting of the restore and
// drill workflows (approval, reminders, timeouts, breaches, teardown on failure), not the systems.
// test/integration/restore.test.ts runs the real activities on the real stack.

interface Journal {
  calls: string[];
  notifications: { kind: string; title: string }[];
  reports: RestoreReport[];
}

// The fake backup is always two hours old by the test's own clock, inside the 1,440-minute RPO
// target whatever today's date is.
const backupAgeMs = 2 * 3_600_000;
const backupTakenAt = () => new Date(Date.now() - backupAgeMs);

const piece = (component: BackupPiece['component'], name: string, key: string, at: Date): BackupPiece => ({
  component,
  name,
  key,
  size: 1000,
  sha256: 'ab',
  rows: 10,
  snapshotAt: at.toISOString(),
  startedAt: at.toISOString(),
  finishedAt: new Date(at.getTime() + 1000).toISOString(),
  durationMs: 1000,
});

function settings(approval: Partial<RestoreSettings['approval']> = {}): RestoreSettings {
  return {
    environment: 'test',
    rtoTargetMinutes: 60,
    rpoTargetMinutes: 1440,
    approval: { approvers: ['alice', 'bob'], fourEyes: true, reminderAfterMinutes: 10, timeoutMinutes: 20, ...approval },
    concurrency: 2,
    drill: { suffix: '_drill', bucketSuffix: '-drill' },
    postgresDatabases: ['shop'],
    clickhouseDatabases: ['analytics'],
    buckets: ['data'],
    backupBucket: 'backups',
  };
}

type Fakes = Partial<Record<keyof Activities, (...args: never[]) => Promise<unknown>>>;

function fakeActivities(journal: Journal, restoreSettings: RestoreSettings, overrides: Fakes = {}): Fakes {
  const health = (system: SystemName) => async (): Promise<SystemHealth> => ({ system, healthy: true, checkedAt: new Date().toISOString(), durationMs: 1, figures: {} });
  const step = (name: string) => async (req: { target?: string }): Promise<RestoreStepResult> => {
    journal.calls.push(`${name} ${req.target ?? ''}`.trim());
    return { component: 'postgres', unit: name, bytes: 1000, durationMs: 5, notes: [] };
  };
  const verify = (name: string, ok = true) => async (): Promise<VerifyResult> => {
    journal.calls.push(name);
    return { component: 'postgres', unit: name, ok, checks: [{ name: `${name} rows`, expected: 10, actual: ok ? 10 : 7, ok }] };
  };
  return {
    checkPostgres: health('postgres'),
    checkClickHouse: health('clickhouse'),
    checkKafka: health('kafka'),
    checkObjectStore: health('objectStore'),
    restoreSettings: async () => restoreSettings,
    planRestore: async (req: { targets: { postgres: Record<string, string>; buckets: Record<string, string> } }): Promise<RestorePlan> => {
      journal.calls.push('plan');
      const at = backupTakenAt();
      return {
        backupId: makeBackupId(at, 'abcdef'),
        environment: 'test',
        consistencyPoint: at.toISOString(),
        backupStartedAt: at.toISOString(),
        components: ['postgres', 'objectStore'],
        notInBackup: [],
        tasks: [
          { component: 'postgres', kind: 'postgresDatabase', database: 'shop', target: req.targets.postgres.shop ?? 'shop', piece: piece('postgres', 'shop', 'backups/x/postgres/shop.dump', at) },
          { component: 'objectStore', kind: 'bucket', bucket: 'data', target: req.targets.buckets.data ?? 'data', listing: piece('objectStore', 'data/listing', 'backups/x/objects/data/listing.json', at) },
        ],
        actions: [{ component: 'postgres', action: 'replace database', target: 'shop', detail: 'renamed aside' }],
        totalBytes: 2000,
        checkedObjects: 2,
        checksumsVerified: true,
      };
    },
    restorePostgresDatabase: step('restore postgres'),
    restoreBucket: step('restore bucket'),
    verifyPostgresDatabase: verify('verify postgres'),
    verifyBucket: verify('verify bucket'),
    writeRestoreReport: async (report: RestoreReport) => {
      journal.reports.push(report);
      return report.reportKey;
    },
    notify: async (n: { kind: string; title: string }) => {
      journal.notifications.push({ kind: n.kind, title: n.title });
      return { delivered: 'log' };
    },
    listDrillReports: async () => [],
    dropPostgresDatabase: async (r: { database: string }) => void journal.calls.push(`drop postgres ${r.database}`),
    dropClickHouseDatabase: async (r: { database: string }) => void journal.calls.push(`drop clickhouse ${r.database}`),
    deleteScratchBucket: async (r: { bucket: string }) => void journal.calls.push(`delete bucket ${r.bucket}`),
    deleteKafkaRestoreTargets: async () => void journal.calls.push('delete kafka'),
    ...overrides,
  };
}

describe('restore and drDrill workflows (fake activities)', () => {
  let env: TestWorkflowEnvironment;

  before(async () => {
    env = await createTestEnvironment();
  });
  after(async () => {
    await env?.teardown();
  });

  async function withWorker<T>(activities: Fakes, fn: (taskQueue: string) => Promise<T>): Promise<T> {
    const taskQueue = `test-${randomUUID()}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
    return worker.runUntil(fn(taskQueue));
  }
  const start = (taskQueue: string, input: RestoreInput) =>
    env.client.workflow.start('restore', { taskQueue, workflowId: `restore-${randomUUID()}`, args: [input] });
  const failureOf = (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError, String(err));
    return err.cause as ApplicationFailure;
  };

  it('skips the gate when pre-approved, restores, verifies, reports RTO and RPO, and says so in the report', async () => {
    const journal: Journal = { calls: [], notifications: [], reports: [] };
    const report = await withWorker(fakeActivities(journal, settings()), async (tq) => {
      const handle = await start(tq, { preApproved: { by: 'drill', reason: 'scheduled' } });
      return (await handle.result()) as RestoreReport;
    });
    assert.equal(report.approval.outcome, 'pre-approved');
    assert.equal(report.approval.by, 'drill');
    assert.equal(report.verified, true);
    assert.deepEqual(journal.calls.slice(0, 1), ['plan']);
    assert.deepEqual(journal.calls.slice(1, 3).sort(), ['restore bucket data', 'restore postgres shop']);
    assert.deepEqual(journal.calls.slice(3).sort(), ['verify bucket', 'verify postgres']);
    assert.equal(report.rto.targetMinutes, 60);
    assert.equal(report.rto.met, true);
    assert.ok(Math.abs(report.rpo.measuredMinutes - backupAgeMs / 60_000) < 5, `RPO ${report.rpo.measuredMinutes} min: the backup is two hours older than the incident`);
    assert.equal(report.rpo.met, true);
    assert.equal(journal.reports.length, 1);
    assert.equal(journal.notifications.length, 0, 'nothing to notify about');
  });

  it('waits for an approver: a refused signal and a refused update leave it waiting, an approver moves it on', async () => {
    const journal: Journal = { calls: [], notifications: [], reports: [] };
    const report = await withWorker(fakeActivities(journal, settings()), async (tq) => {
      const handle = await start(tq, { requestedBy: 'alice' });
      await eventually('the gate', async () => ((await handle.query(restoreStatusQuery)).phase === 'awaiting approval' ? true : undefined), 20_000, 50);
      await handle.signal(approveSignal, { by: 'mallory', reason: 'let me' });
      await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ by: 'alice', reason: 'mine' }] }), (err) => {
        assert.ok(err instanceof WorkflowUpdateFailedError);
        assert.match(String(err.cause?.message), /four-eyes/);
        return true;
      });
      await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ by: 'bob', reason: ' ' }] }), (err) => {
        assert.match(String((err as WorkflowUpdateFailedError).cause?.message), /must say why/);
        return true;
      });
      const status = await handle.query(restoreStatusQuery);
      assert.equal(status.phase, 'awaiting approval');
      assert.ok(!journal.calls.some((c) => c.startsWith('restore ')), 'nothing restored while waiting');
      assert.equal(await handle.executeUpdate(approveUpdate, { args: [{ by: 'bob', reason: 'incident 7' }] }), 'approved by bob');
      return (await handle.result()) as RestoreReport;
    });
    assert.equal(report.approval.outcome, 'approved');
    assert.equal(report.approval.by, 'bob');
    assert.equal(report.approval.via, 'update');
    assert.ok(report.approval.waitedMs > 0);
  });

  it('refuses an approval update while nothing is waiting', async () => {
    const journal: Journal = { calls: [], notifications: [], reports: [] };
    let releasePlan: () => void = () => undefined;
    const planGate = new Promise<void>((resolve) => (releasePlan = resolve));
    const fakes = fakeActivities(journal, settings());
    const realPlan = fakes.planRestore!;
    fakes.planRestore = async (...args: never[]) => {
      await planGate;
      return realPlan(...args);
    };
    await withWorker(fakes, async (tq) => {
      const handle = await start(tq, {});
      await eventually('planning', async () => ((await handle.query(restoreStatusQuery)).phase === 'planning' ? true : undefined), 20_000, 50);
      await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ by: 'bob', reason: 'early' }] }), (err) => {
        assert.match(String((err as WorkflowUpdateFailedError).cause?.message), /nothing is waiting for approval/);
        return true;
      });
      releasePlan();
      await handle.terminate('test done');
    });
  });

  it('reminds once, then fails closed at the timeout without restoring anything', async () => {
    const journal: Journal = { calls: [], notifications: [], reports: [] };
    await withWorker(fakeActivities(journal, settings({ reminderAfterMinutes: 0.01, timeoutMinutes: 0.03 })), async (tq) => {
      const handle = await start(tq, {});
      await assert.rejects(handle.result(), (err) => {
        const cause = failureOf(err);
        assert.equal(cause.type, 'ApprovalTimedOut');
        assert.match(cause.message, /nothing was touched/);
        return true;
      });
    });
    assert.deepEqual(journal.notifications.map((n) => n.kind), ['reminder']);
    assert.deepEqual(journal.calls, ['plan']);
    assert.equal(journal.reports[0]?.approval.outcome, 'timed out');
    assert.equal(journal.reports[0]?.approval.remindersSent, 1);
  });

  it('fails loudly when verification fails, and notifies', async () => {
    const journal: Journal = { calls: [], notifications: [], reports: [] };
    const fakes = fakeActivities(journal, settings(), {});
    fakes.verifyBucket = async () => ({ component: 'objectStore', unit: 'bucket data', ok: false, checks: [{ name: 'bucket data objects present', expected: 60, actual: 59, ok: false }] });
    await withWorker(fakes, async (tq) => {
      const handle = await start(tq, { preApproved: { by: 'x', reason: 'y' } });
      await assert.rejects(handle.result(), (err) => {
        const cause = failureOf(err);
        assert.equal(cause.type, 'VerificationFailed');
        assert.match(cause.message, /bucket data objects present: expected 60, found 59/);
        return true;
      });
    });
    assert.ok(journal.notifications.some((n) => n.kind === 'failure'));
    assert.equal(journal.reports[0]?.verified, false);
    assert.equal(journal.reports[0]?.rto.met, false, 'an unverified restore never meets its RTO');
  });

  it('reports and notifies an RTO breach', async () => {
    const journal: Journal = { calls: [], notifications: [], reports: [] };
    const report = await withWorker(fakeActivities(journal, settings()), async (tq) => {
      const handle = await start(tq, { preApproved: { by: 'x', reason: 'y' }, incidentStartedAt: new Date(Date.now() - 90 * 60_000).toISOString(), rtoTargetMinutes: 30 });
      return (await handle.result()) as RestoreReport;
    });
    assert.equal(report.rto.met, false);
    assert.ok(report.rto.measuredMinutes >= 90);
    assert.equal(report.rto.targetMinutes, 30);
    assert.deepEqual(journal.notifications.map((n) => n.kind), ['breach']);
  });

  it('refuses bad input before planning, naming the field', async () => {
    const journal: Journal = { calls: [], notifications: [], reports: [] };
    await withWorker(fakeActivities(journal, settings()), async (tq) => {
      const handle = await start(tq, { targets: { postgres: { shop: 'shop; drop' } } });
      await assert.rejects(handle.result(), (err) => {
        assert.match(failureOf(err).message, /input\.targets\.postgres\.shop/);
        return true;
      });
    });
    assert.deepEqual(journal.calls, []);
  });

  it('drill: tears every scratch target down even when the restore fails', async () => {
    const journal: Journal = { calls: [], notifications: [], reports: [] };
    const fakes = fakeActivities(journal, settings(), {
      restorePostgresDatabase: async () => {
        throw ApplicationFailure.nonRetryable('pg_restore failed: disk full', 'InvalidInput');
      },
    });
    await withWorker(fakes, async (tq) => {
      const handle = await env.client.workflow.start('drDrill', { taskQueue: tq, workflowId: `drill-${randomUUID()}`, args: [{ preApproved: { by: 'schedule', reason: 'monthly' } }] });
      await assert.rejects(handle.result() as Promise<DrDrillResult>, (err) => {
        assert.ok(err instanceof WorkflowFailedError);
        return true;
      });
    });
    assert.ok(journal.calls.includes('restore bucket data-drill'), 'the restore targeted the scratch bucket');
    assert.ok(journal.notifications.some((n) => n.kind === 'failure' && /failed/.test(n.title)), 'the failed restore notified');
    assert.equal(journal.reports[0]?.verified, false, 'and left a report');
    for (const expected of ['drop postgres shop_drill', 'drop clickhouse analytics_drill', 'delete bucket data-drill']) {
      assert.ok(journal.calls.includes(expected), `${expected} in ${journal.calls.join(', ')}`);
    }
  });
});
