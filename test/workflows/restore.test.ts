import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client, WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import { createApprovalActivities, planHash } from '../../activities/approval/approvals';
import type { RestorePlan } from '../../activities/restore/plan';
import type { RestoreSettings } from '../../activities/restore/report';
import type { ActivityDeps } from '../../activities/deps';
import { preApprovalText } from '../../contracts/approvalTypes';
import type { Config } from '../../contracts/config';
import { approveSignal, approveUpdate, rejectUpdate } from '../../workflows/approval';
import { makeBackupId } from '../../contracts/backupId';
import type { DrDrillResult } from '../../workflows/drDrill';
import { restoreStatusQuery, type RestoreInput } from '../../workflows/restore';
import type { PlannedTaskRequest, RestoreReport, RestoreStepResult, RestoreTaskHandle, RestoreTargets, StoredPlanRef, VerifyResult } from '../../contracts/restoreTypes';
import type { SystemHealth, SystemName } from '../../contracts/healthTypes';
import { createApprovers, type Approvers } from '../../localStack/approvers';
import { eventually } from '../helpers/stackWorker';
import { createTestEnvironment, workflowBundle } from '../helpers/workflowEnv';

// Fake system activities: the point here is the gate, the ordering and the reporting of the
// restore and drill workflows (approval, reminders, timeouts, breaches, teardown on failure), not
// the systems. The approval activities are the real ones: signatures are checked by ssh-keygen
// against a real allowed-signers file, and the requester is what Temporal recorded.
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

function settings(approval: Partial<RestoreSettings['approval']> = {}, drill: Partial<RestoreSettings['drill']> = {}): RestoreSettings {
  return {
    environment: 'test',
    rtoTargetMinutes: 60,
    rpoTargetMinutes: 1440,
    approval: { unsignedAllowed: false, approvers: ['alice', 'bob', 'carol'], fourEyes: true, reminderAfterMinutes: 10, timeoutMinutes: 20, ...approval },
    concurrency: 2,
    drill: { suffix: '_drill', bucketSuffix: '-drill', scheduleId: `drill-schedule-${randomUUID()}`, schedulePreApproved: true, scratchPreApproved: false, ...drill },
    postgresDatabases: ['shop'],
    clickhouseDatabases: ['analytics'],
    buckets: ['data'],
    backupBucket: 'backups',
  };
}

const noTargets: RestoreTargets = { postgres: {}, clickhouse: {}, kafkaSuffix: '', buckets: {} };

// bob and carol are listed approvers; mallory has a key, but it is not in the file.
let approvers: Approvers;

type Fakes = Partial<Record<keyof Activities, (...args: never[]) => Promise<unknown>>>;

/** The real approval activities (ssh-keygen, Temporal's start identity) over this allowed-signers file. */
function approvalActivities(allowedSignersFile: string): Fakes {
  const deps = { config: { environment: 'production', approvals: { allowedSignersFile } } as Config, connections: {} } as ActivityDeps;
  return createApprovalActivities(deps) as Fakes;
}

function fakeActivities(journal: Journal, restoreSettings: RestoreSettings, overrides: Fakes = {}): Fakes {
  const health = (system: SystemName) => async (): Promise<SystemHealth> => ({ system, healthy: true, checkedAt: new Date().toISOString(), durationMs: 1, figures: {} });
  // The tasks of the latest plan, as the stored plan would give them to a step by index.
  let planned: RestoreTaskHandle[] = [];
  let storedPlan: StoredPlanRef | undefined;
  const step = (name: string) => async (req: PlannedTaskRequest): Promise<RestoreStepResult> => {
    assert.deepEqual(req.plan, storedPlan, 'a step is given the plan planRestore stored, by reference');
    const task = planned[req.task]!;
    journal.calls.push(`${name} ${'target' in task ? task.target : ''}`.trim());
    return { component: 'postgres', unit: name, bytes: 1000, durationMs: 5, notes: [] };
  };
  const verify = (name: string, ok = true) => async (req: PlannedTaskRequest): Promise<VerifyResult> => {
    assert.deepEqual(req.plan, storedPlan);
    journal.calls.push(name);
    return { component: 'postgres', unit: name, ok, checks: [{ name: `${name} rows`, expected: 10, actual: ok ? 10 : 7, ok }] };
  };
  return {
    checkPostgres: health('postgres'),
    checkClickHouse: health('clickhouse'),
    checkKafka: health('kafka'),
    checkObjectStore: health('objectStore'),
    restoreSettings: async () => restoreSettings,
    planRestore: async (req: { backupId: string; components?: string[]; targets?: RestoreTargets; scratch?: { suffix: string; bucketSuffix: string } }): Promise<RestorePlan> => {
      journal.calls.push('plan');
      const at = backupTakenAt();
      const s = req.scratch;
      const targets: RestoreTargets = s
        ? { postgres: { shop: `shop${s.suffix}` }, clickhouse: { analytics: `analytics${s.suffix}` }, kafkaSuffix: s.suffix, buckets: { data: `data${s.bucketSuffix}` } }
        : (req.targets ?? noTargets);
      const backupId = req.backupId === 'latest' ? makeBackupId(at, 'abcdef') : req.backupId;
      const actions = [{ component: 'postgres' as const, action: 'replace database', target: targets.postgres.shop ?? 'shop', detail: 'renamed aside' }];
      planned = [
        { component: 'postgres', kind: 'postgresDatabase', database: 'shop', target: targets.postgres.shop ?? 'shop', index: 0, bytes: 1000, pieces: 1 },
        { component: 'objectStore', kind: 'bucket', bucket: 'data', target: targets.buckets.data ?? 'data', index: 1, bytes: 1000, pieces: 1 },
      ];
      const hash = planHash({ backupId, components: req.components, targets, actions });
      storedPlan = { key: `reports/plans/${randomUUID()}.json`, sha256: 'cd'.repeat(32), planHash: hash };
      return {
        backupId,
        environment: 'test',
        consistencyPoint: at.toISOString(),
        backupStartedAt: at.toISOString(),
        components: ['postgres', 'objectStore'],
        notInBackup: [],
        backupComplete: true,
        backupLacks: [],
        manifestKeyId: '0123abcd',
        warnings: [],
        tasks: planned,
        targets,
        actions,
        planHash: hash,
        totalBytes: 2000,
        checkedObjects: 2,
        checksumsVerified: true,
        stored: storedPlan,
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
    acquireRestoreLeases: async (r: { targets: string[] }) => {
      journal.calls.push(`lease ${r.targets.join(' ')}`);
      return r.targets;
    },
    releaseRestoreLeases: async () => void journal.calls.push('release leases'),
    dropPostgresDatabase: async (r: { database: string }) => void journal.calls.push(`drop postgres ${r.database}`),
    dropClickHouseDatabase: async (r: { database: string }) => void journal.calls.push(`drop clickhouse ${r.database}`),
    deleteScratchBucket: async (r: { bucket: string }) => void journal.calls.push(`delete bucket ${r.bucket}`),
    deleteKafkaRestoreTargets: async () => void journal.calls.push('delete kafka'),
    ...approvalActivities(approvers.allowedSignersFile),
    ...overrides,
  };
}


const scheduledBy = defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD);

describe('restore and drDrill workflows (fake system activities, real approval checks)', () => {
  let env: TestWorkflowEnvironment;
  /** Runs start as alice: Temporal records her as the requester. */
  let alice: Client;

  before(async () => {
    env = await createTestEnvironment();
    approvers = await createApprovers(['alice', 'bob', 'carol'], ['mallory']);
    alice = new Client({ connection: env.connection, identity: 'alice' });
  });
  after(async () => {
    await env?.teardown();
  });

  async function withWorker<T>(activities: Fakes, fn: (taskQueue: string) => Promise<T>): Promise<T> {
    const taskQueue = `test-${randomUUID()}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
    return worker.runUntil(fn(taskQueue));
  }
  const start = (taskQueue: string, input: RestoreInput, workflowId = `restore-${randomUUID()}`, client = alice) => client.workflow.start('restore', { taskQueue, workflowId, args: [input] });
  const failureOf = (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError, String(err));
    return err.cause as ApplicationFailure;
  };
  const newJournal = (): Journal => ({ calls: [], notifications: [], reports: [] });
  /** Waits for the gate; returns what an approver needs to sign: the run and the plan hash. */
  const gateOf = async (handle: WorkflowHandle) => {
    const status = await eventually('the gate', async () => {
      const s = await handle.query(restoreStatusQuery);
      return s.phase === 'awaiting approval' ? s : undefined;
    }, 20_000, 50);
    return { workflowId: handle.workflowId, runId: (await handle.describe()).runId, planHash: status.plan!.hash, status };
  };
  const updateRefusal = async (handle: WorkflowHandle, answer: object) => {
    let message = '';
    await assert.rejects(handle.executeUpdate(approveUpdate, { args: [answer as never] }), (err) => {
      assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
      message = String(err.cause?.message);
      return true;
    });
    return message;
  };
  const detailsOf = async (handle: WorkflowHandle) => ((await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string }).currentDetails ?? '';
  const backupId = () => makeBackupId(backupTakenAt(), 'abcdef');
  /** A pre-approval signed by `by` over this workflow id, backup and targets. */
  const preApproval = async (by: string, a: { workflowId: string; backupId: string; targets?: RestoreTargets; expiresAt?: string }) => {
    const expiresAt = a.expiresAt ?? new Date(Date.now() + 3_600_000).toISOString();
    const text = preApprovalText({ workflowId: a.workflowId, backupId: a.backupId, components: undefined, targets: a.targets ?? noTargets, expiresAt, reason: 'incident 9' });
    return { reason: 'incident 9', expiresAt, signature: await approvers.sign(by, text) };
  };

  it('waits for a signed approval of its plan: shows the hash and the actions, and records the signer and key', async () => {
    const journal = newJournal();
    const { report, gate, details } = await withWorker(fakeActivities(journal, settings()), async (tq) => {
      const handle = await start(tq, {});
      const gate = await gateOf(handle);
      const details = await detailsOf(handle);
      assert.ok(!journal.calls.some((c) => c.startsWith('restore ')), 'nothing restored while waiting');
      assert.equal(await handle.executeUpdate(approveUpdate, { args: [await approvers.signAnswer('bob', { ...gate, reason: 'incident 7' })] }), 'approved by bob');
      return { report: (await handle.result()) as RestoreReport, gate, details };
    });
    assert.match(gate.planHash, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(gate.status.plan?.actions, ['replace database shop: renamed aside']);
    assert.ok(details.includes(gate.planHash) && details.includes('replace database shop') && details.includes(`run: ${gate.runId}`), details);
    assert.equal(report.planHash, gate.planHash);
    assert.equal(report.requestedBy, 'alice');
    assert.equal(report.approval.outcome, 'approved');
    assert.equal(report.approval.by, 'bob');
    assert.equal(report.approval.authentication, 'ssh-signature');
    assert.equal(report.approval.keyFingerprint, await approvers.fingerprint('bob'));
    assert.equal(report.approval.via, 'update');
    assert.equal(report.verified, true);
    assert.deepEqual(journal.calls.slice(0, 2), ['plan', 'lease buckets/data postgres/shop'], 'the targets are leased before the gate');
    assert.deepEqual(journal.calls.filter((c) => c.startsWith('restore ')).sort(), ['restore bucket data', 'restore postgres shop']);
    assert.equal(journal.calls.at(-1), 'release leases');
  });

  it('refuses a key not in the file, a signature over another plan, one replayed from an earlier run and an unsigned approval; shows each, keeps waiting, then fails closed with nothing touched', async () => {
    const journal = newJournal();
    // What approvalPolicy gives a production config: signatures required.
    const policy = { ...settings({ unsignedAllowed: false, reminderAfterMinutes: 0.3, timeoutMinutes: 0.3 }), environment: 'production' };
    const { refusals, status, details, earlier } = await withWorker(fakeActivities(journal, policy), async (tq) => {
      // An earlier run of the same plan, approved by bob: its signature must not approve the next run.
      const workflowId = `restore-${randomUUID()}`;
      const id = backupId();
      const first = await start(tq, { backupId: id }, workflowId);
      const firstGate = await gateOf(first);
      const earlier = await approvers.signAnswer('bob', { ...firstGate, reason: 'incident 7' });
      await first.executeUpdate(approveUpdate, { args: [earlier] });
      await first.result();
      journal.calls.length = 0;

      const handle = await start(tq, { backupId: id }, workflowId);
      const gate = await gateOf(handle);
      assert.equal(gate.planHash, firstGate.planHash, 'the same plan, so only the run id tells the answers apart');
      const otherPlan = `sha256:${'b'.repeat(64)}`;
      const refusals = [
        await updateRefusal(handle, await approvers.signAnswer('mallory', { ...gate, reason: 'let me' })),
        await updateRefusal(handle, { ...(await approvers.signAnswer('bob', { ...gate, planHash: otherPlan, reason: 'other plan' })), plan: gate.planHash }),
        await updateRefusal(handle, await approvers.signAnswer('bob', { ...gate, planHash: otherPlan, reason: 'other plan' })),
        await updateRefusal(handle, earlier),
        await updateRefusal(handle, { plan: gate.planHash, by: 'bob', reason: 'trust me' }),
      ];
      // A signal cannot answer: its refusal must show in the status and the details, and be notified.
      await handle.signal(approveSignal, await approvers.signAnswer('mallory', { ...gate, reason: 'by signal' }));
      const status = await eventually('the refused signal in the status', async () => {
        const s = await handle.query(restoreStatusQuery);
        return s.approvalRefusals.some((r) => r.includes('(signal, signed) REFUSED')) ? s : undefined;
      }, 10_000, 50);
      const details = await detailsOf(handle);
      await assert.rejects(handle.result(), (err) => {
        assert.equal(failureOf(err).type, 'ApprovalTimedOut');
        return true;
      });
      return { refusals, status, details, earlier };
    });
    assert.match(refusals[0]!, /signing key is not in the allowed-signers file/);
    assert.match(refusals[1]!, /does not match this text/);
    assert.match(refusals[2]!, /is for plan sha256:b+, but the run waits on plan/);
    assert.match(refusals[3]!, /does not match this text/);
    assert.ok(earlier.signature.length > 0);
    assert.match(refusals[4]!, /unsigned approval is refused/);
    assert.equal(status.phase, 'awaiting approval', 'refusals leave it waiting');
    assert.match(details, /^REFUSED .*approve \(signal, signed\) REFUSED: .*not in the allowed-signers file/);
    assert.ok(journal.notifications.some((n) => n.kind === 'failure' && /approve refused/.test(n.title)), 'the refused signal was notified');
    assert.deepEqual(journal.calls, ['plan', 'lease buckets/data postgres/shop', 'release leases'], 'nothing was restored, and the leases were given back');
    const report = journal.reports.at(-1)!;
    assert.equal(report.approval.outcome, 'timed out');
    assert.equal(report.approval.refusals.length, 4, 'the four signed or signal answers that reached the run are in the report');
  });

  it('four-eyes: the requester of a run, as Temporal recorded it, cannot approve it, and the input cannot name another requester', async () => {
    const journal = newJournal();
    const bob = new Client({ connection: env.connection, identity: 'bob' });
    await withWorker(fakeActivities(journal, settings()), async (tq) => {
      const handle = await start(tq, {}, undefined, bob);
      const gate = await gateOf(handle);
      assert.match(await updateRefusal(handle, await approvers.signAnswer('bob', { ...gate, reason: 'my own' })), /bob started this run and cannot approve it too \(four-eyes\)/);
      assert.equal(await handle.executeUpdate(rejectUpdate, { args: [await approvers.signAnswer('carol', { ...gate, decision: 'reject', reason: 'not yet' })] }), 'rejected by carol');
      await assert.rejects(handle.result(), (err) => failureOf(err).type === 'Rejected');
      const named = await start(tq, { requestedBy: 'mallory' } as never, undefined, bob);
      await assert.rejects(named.result(), (err) => {
        const cause = failureOf(err);
        assert.equal(cause.type, 'InvalidInput');
        assert.match(cause.message, /input\.requestedBy: not accepted: ballast records who started the run/);
        return true;
      });
    });
    assert.deepEqual(journal.calls, ['plan', 'lease buckets/data postgres/shop', 'release leases'], 'nothing restored, and the second run never planned');
  });

  it('a signed pre-approval bound to this backup and these targets skips the gate, and the report names the signer', async () => {
    const journal = newJournal();
    const workflowId = `restore-${randomUUID()}`;
    const id = backupId();
    const report = await withWorker(fakeActivities(journal, settings()), async (tq) => {
      const handle = await start(tq, { backupId: id, preApproved: await preApproval('carol', { workflowId, backupId: id }) }, workflowId);
      return (await handle.result()) as RestoreReport;
    });
    assert.equal(report.approval.outcome, 'pre-approved');
    assert.equal(report.approval.by, 'carol');
    assert.equal(report.approval.authentication, 'ssh-signature');
    assert.equal(report.approval.keyFingerprint, await approvers.fingerprint('carol'));
    assert.equal(report.verified, true);
    assert.equal(report.rto.met, true);
    assert.ok(Math.abs(report.rpo.measuredMinutes - backupAgeMs / 60_000) < 5, `RPO ${report.rpo.measuredMinutes} min: the backup is two hours older than the incident`);
    assert.equal(journal.notifications.length, 0, 'nothing to notify about');
  });

  it('refuses at start, touching nothing, an unsigned pre-approval, one for other targets, an expired one, one signed by the requester, one for another run, and a drill approval outside a drill', async () => {
    const journal = newJournal();
    const id = backupId();
    const refusals = await withWorker(fakeActivities(journal, settings()), async (tq) => {
      const refused = async (input: (workflowId: string) => Promise<RestoreInput>) => {
        const workflowId = `restore-${randomUUID()}`;
        const handle = await start(tq, await input(workflowId), workflowId);
        let message = '';
        await assert.rejects(handle.result(), (err) => {
          const cause = failureOf(err);
          assert.equal(cause.type, 'PreApprovalRefused');
          message = cause.message;
          return true;
        });
        return message;
      };
      return [
        await refused(async () => ({ backupId: id, preApproved: { by: 'bob', reason: 'trust me' } })),
        await refused(async (workflowId) => ({ backupId: id, preApproved: await preApproval('bob', { workflowId, backupId: id, targets: { ...noTargets, postgres: { shop: 'shop_copy' } } }) })),
        await refused(async (workflowId) => ({ backupId: id, preApproved: await preApproval('bob', { workflowId, backupId: id, expiresAt: new Date(Date.now() - 60_000).toISOString() }) })),
        await refused(async (workflowId) => ({ backupId: id, preApproved: await preApproval('alice', { workflowId, backupId: id }) })),
        await refused(async (workflowId) => ({ backupId: id, preApproved: await preApproval('bob', { workflowId: `${workflowId}-other`, backupId: id }) })),
        await refused(async () => ({ backupId: id, drillApproval: { required: false, outcome: 'pre-approved', requestedAt: '', waitedMs: 0, remindersSent: 0, refusals: [] } })),
      ];
    });
    assert.match(refusals[0]!, /only with a signed pre-approval/);
    assert.match(refusals[1]!, /does not pre-approve this workflow id, backup, components and targets/);
    assert.match(refusals[2]!, /expired at/);
    assert.match(refusals[3]!, /alice started this run and cannot pre-approve it too/);
    assert.match(refusals[4]!, /does not pre-approve/);
    assert.match(refusals[5]!, /drillApproval is set by a drDrill run/);
    for (const r of refusals) assert.match(r, /nothing was touched/);
    assert.deepEqual(journal.calls, [], 'no run planned, restored or dropped anything');
  });

  it('refuses an approval update while nothing is waiting', async () => {
    const journal = newJournal();
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
      assert.match(await updateRefusal(handle, { plan: `sha256:${'a'.repeat(64)}`, reason: 'early', signature: 'x' }), /nothing is waiting for approval/);
      releasePlan();
      await handle.terminate('test done');
    });
  });

  it('reminds once, then fails closed at the timeout without restoring anything', async () => {
    const journal = newJournal();
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
    assert.deepEqual(journal.calls, ['plan', 'lease buckets/data postgres/shop', 'release leases']);
    assert.equal(journal.reports[0]?.approval.outcome, 'timed out');
    assert.equal(journal.reports[0]?.approval.remindersSent, 1);
  });

  it('fails loudly when verification fails, and notifies', async () => {
    const journal = newJournal();
    const fakes = fakeActivities(journal, settings(), {});
    fakes.verifyBucket = async () => ({ component: 'objectStore', unit: 'bucket data', ok: false, checks: [{ name: 'bucket data objects present', expected: 60, actual: 59, ok: false }] });
    const workflowId = `restore-${randomUUID()}`;
    const id = backupId();
    await withWorker(fakes, async (tq) => {
      const handle = await start(tq, { backupId: id, preApproved: await preApproval('bob', { workflowId, backupId: id }) }, workflowId);
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

  it('after the first failed step, no new destructive step starts', async () => {
    const journal = newJournal();
    const fakes = fakeActivities(journal, { ...settings(), concurrency: 1 }, {
      restorePostgresDatabase: async () => {
        journal.calls.push('restore postgres shop (fails)');
        throw ApplicationFailure.nonRetryable('pg_restore failed: disk full', 'InvalidInput');
      },
    });
    const workflowId = `restore-${randomUUID()}`;
    const id = backupId();
    await withWorker(fakes, async (tq) => {
      const handle = await start(tq, { backupId: id, preApproved: await preApproval('bob', { workflowId, backupId: id }) }, workflowId);
      await assert.rejects(handle.result(), (err) => /disk full/.test(String((err as WorkflowFailedError).cause?.message)));
    });
    assert.deepEqual(journal.calls.filter((c) => c.startsWith('restore ')), ['restore postgres shop (fails)'], 'the bucket step never started');
    assert.equal(journal.calls.at(-1), 'release leases');
  });

  it('reports and notifies an RTO breach', async () => {
    const journal = newJournal();
    const workflowId = `restore-${randomUUID()}`;
    const id = backupId();
    const report = await withWorker(fakeActivities(journal, settings()), async (tq) => {
      const input: RestoreInput = { backupId: id, preApproved: await preApproval('bob', { workflowId, backupId: id }), incidentStartedAt: new Date(Date.now() - 90 * 60_000).toISOString(), rtoTargetMinutes: 30 };
      return (await (await start(tq, input, workflowId)).result()) as RestoreReport;
    });
    assert.equal(report.rto.met, false);
    assert.ok(report.rto.measuredMinutes >= 90);
    assert.equal(report.rto.targetMinutes, 30);
    assert.deepEqual(journal.notifications.map((n) => n.kind), ['breach']);
  });

  it('refuses bad input before planning, naming the field', async () => {
    const journal = newJournal();
    await withWorker(fakeActivities(journal, settings()), async (tq) => {
      const handle = await start(tq, { targets: { postgres: { shop: 'shop; drop' } } });
      await assert.rejects(handle.result(), (err) => {
        assert.match(failureOf(err).message, /input\.targets\.postgres\.shop/);
        return true;
      });
    });
    assert.deepEqual(journal.calls, []);
  });

  it('drill: waits for an approval of its plan, even when a client forges the search attribute a schedule sets', async () => {
    const journal = newJournal();
    const policy = settings();
    await withWorker(fakeActivities(journal, policy), async (tq) => {
      const handle = await alice.workflow.start('drDrill', { taskQueue: tq, workflowId: `drill-${randomUUID()}`, args: [{}], typedSearchAttributes: [{ key: scheduledBy, value: policy.drill.scheduleId }] });
      const details = await eventually('the drill gate', async () => {
        const d = await detailsOf(handle);
        return d.startsWith('WAITING FOR APPROVAL of a DR drill') ? d : undefined;
      }, 20_000, 50);
      assert.match(details, /Plan sha256:[0-9a-f]{64}:\n {2}- replace database shop_drill/);
      await handle.terminate('test done');
      const old = await alice.workflow.start('drDrill', { taskQueue: tq, workflowId: `drill-${randomUUID()}`, args: [{ preApproved: { by: 'schedule', reason: 'monthly' } } as never] });
      await assert.rejects(old.result(), (err) => /input\.preApproved: not accepted: a drill starts without a person only by config/.test(failureOf(err).message));
    });
    assert.deepEqual(journal.calls, ['plan', 'lease buckets/data-drill postgres/shop_drill'], 'the drill planned and leased its scratch targets, and touched nothing');
  });

  it('drill: its own schedule starts it without a person; it tears every scratch target down even when the restore fails', async () => {
    const journal = newJournal();
    const policy = settings();
    const fakes = fakeActivities(journal, policy, {
      restorePostgresDatabase: async () => {
        throw ApplicationFailure.nonRetryable('pg_restore failed: disk full', 'InvalidInput');
      },
    });
    const report = await withWorker(fakes, async (tq) => {
      const schedule = await alice.schedule.create({
        scheduleId: policy.drill.scheduleId,
        spec: { intervals: [{ every: '365 days' }] },
        action: { type: 'startWorkflow', workflowType: 'drDrill', taskQueue: tq, args: [{}], workflowId: `scheduled-drill-${randomUUID()}` },
        state: { paused: true },
      });
      try {
        await schedule.trigger();
        const started = await eventually('the scheduled drill', async () => (await schedule.describe()).info.recentActions[0]?.action.workflow, 20_000, 100);
        const handle = alice.workflow.getHandle(started.workflowId, started.firstExecutionRunId);
        await assert.rejects(handle.result() as Promise<DrDrillResult>, (err) => err instanceof WorkflowFailedError);
        return journal.reports[0];
      } finally {
        await schedule.delete();
      }
    });
    assert.equal(report?.approval.outcome, 'pre-approved');
    assert.equal(report?.approval.authentication, 'policy');
    assert.match(report?.approval.reason ?? '', /started by its schedule drill-schedule-.* \(drill\.schedulePreApproved\)/);
    assert.equal(report?.approval.via, 'parent drill');
    assert.ok(journal.calls.includes('restore bucket data-drill'), 'the restore targeted the scratch bucket');
    assert.ok(journal.notifications.some((n) => n.kind === 'failure' && /failed/.test(n.title)), 'the failed restore notified');
    assert.equal(report?.verified, false, 'and left a report');
    for (const expected of ['drop postgres shop_drill', 'drop clickhouse analytics_drill', 'delete bucket data-drill']) {
      assert.ok(journal.calls.includes(expected), `${expected} in ${journal.calls.join(', ')}`);
    }
    assert.equal(journal.calls.at(-1), 'release leases', 'the drill gives its leases back after the teardown, not before');
  });
});
