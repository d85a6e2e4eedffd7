import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client, WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import { createApprovalActivities, planHash } from '../../activities/approval/approvals';
import type { ActivityDeps } from '../../activities/deps';
import type { Config } from '../../contracts/config';
import { planActions } from '../../contracts/demoResetRows';
import type { DemoFigures, DemoResetPlan, DemoResetReport, DemoResetSettings } from '../../contracts/demoResetTypes';
import { Failure } from '../../contracts/failures';
import { approveUpdate, confirmSignal, confirmUpdate } from '../../workflows/approval';
import { demoResetStatusQuery, type demoReset, type DemoResetInput } from '../../workflows/demoReset';
import { eventually } from '../helpers/stackWorker';
import { createTestEnvironment, workflowBundle } from '../helpers/workflowEnv';

// Fake system activities: the point here is the workflow's guard and confirmation logic (typed
// environment, plan hash, four-eyes, timeout failing closed, force skipping only the confirmation,
// a guard failing mid-wipe stopping it). The approval activities are the real ones.
// test/integration/demoReset.test.ts runs the real activities on the real stack.

type Fakes = Partial<Record<keyof Activities, (...args: never[]) => Promise<unknown>>>;

interface Journal {
  calls: string[];
  reports: DemoResetReport[];
}

function settings(timeoutMinutes = 1): DemoResetSettings {
  return {
    environment: 'demo',
    components: ['postgres', 'clickhouse', 'kafka', 'objectStore'],
    keep: [],
    confirmation: { unsignedAllowed: true, approvers: ['alice', 'bob'], fourEyes: true, reminderAfterMinutes: timeoutMinutes, timeoutMinutes },
  };
}

const before_: DemoFigures = {
  kafka: { topics: [{ topic: 'orders', cleanupPolicy: 'delete', partitions: [{ partition: 0, logStart: 0, highWatermark: 5, messages: 5 }] }], groups: [{ groupId: 'billing', members: 0, offsets: [{ topic: 'orders', partition: 0, offset: 3 }] }] },
  postgres: [{ database: 'shop', tables: [{ table: 'public.orders', rows: 7 }] }],
  clickhouse: [{ database: 'analytics', tables: [{ table: 'events', rows: 9 }] }],
  objectStore: [{ bucket: 'data', objects: 2, versions: 3, deleteMarkers: 1, bytes: 30 }],
};
const zero: DemoFigures = {
  kafka: { topics: [{ topic: 'orders', cleanupPolicy: 'delete', partitions: [{ partition: 0, logStart: 5, highWatermark: 5, messages: 0 }] }], groups: [{ groupId: 'billing', members: 0, offsets: [{ topic: 'orders', partition: 0, offset: 5 }] }] },
  postgres: [{ database: 'shop', tables: [{ table: 'public.orders', rows: 0 }] }],
  clickhouse: [{ database: 'analytics', tables: [{ table: 'events', rows: 0 }] }],
  objectStore: [{ bucket: 'data', objects: 0, versions: 0, deleteMarkers: 0, bytes: 0 }],
};

function fakeActivities(journal: Journal, demoSettings: DemoResetSettings, overrides: Fakes = {}): Fakes {
  const deps = { config: { environment: 'demo', approvals: {} } as Config, connections: {} } as ActivityDeps;
  const step = (name: string) => async (req: { database?: string; bucket?: string; topic?: { topic: string } }) => {
    journal.calls.push(`${name} ${req.database ?? req.bucket ?? req.topic?.topic ?? ''}`.trim());
    return { deleted: 1, moved: 1 };
  };
  return {
    ...(createApprovalActivities(deps) as Fakes),
    demoResetSettings: async () => demoSettings,
    planDemoReset: async (req: { keep: string[] }): Promise<DemoResetPlan> => {
      journal.calls.push(`plan keep=${req.keep.join(',')}`);
      const body = { environment: 'demo', components: demoSettings.components, kept: [], markers: [], figures: before_, reseed: 'empty' as const };
      return { ...body, hash: planHash(body), actions: planActions(body) };
    },
    demoResetFigures: async () => zero,
    purgeDemoTopic: step('purge'),
    resetDemoGroups: step('reset groups'),
    truncateDemoPostgres: step('truncate postgres'),
    truncateDemoClickHouse: step('truncate clickhouse'),
    emptyDemoBucket: step('empty bucket'),
    writeDemoResetReport: async (report: DemoResetReport) => {
      journal.reports.push(report);
      return report.reportKey;
    },
    notify: async () => ({ delivered: 'log' }),
    ...overrides,
  };
}

const WIPE = ['purge orders', 'reset groups', 'truncate postgres shop', 'truncate clickhouse analytics', 'empty bucket data'];

describe('demoReset workflow (fake system activities, real approval checks)', () => {
  let env: TestWorkflowEnvironment;
  /** Runs start as alice: Temporal records her as the requester. */
  let alice: Client;

  before(async () => {
    env = await createTestEnvironment();
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
  const start = (taskQueue: string, input: DemoResetInput) => alice.workflow.start<typeof demoReset>('demoReset', { taskQueue, workflowId: `demo-reset-${randomUUID()}`, args: [input] });
  const failureOf = (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError, String(err));
    return err.cause as ApplicationFailure;
  };
  const waitingPlan = async (handle: WorkflowHandle) =>
    (
      await eventually('the confirmation wait', async () => {
        const s = await handle.query(demoResetStatusQuery);
        return s.phase === 'awaiting confirmation' ? s : undefined;
      }, 20_000, 50)
    ).plan!.hash;
  const refusalOf = async (promise: Promise<unknown>) => {
    let message = '';
    await assert.rejects(promise, (err) => {
      assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
      message = String(err.cause?.message);
      return true;
    });
    return message;
  };

  it('a dry run plans, reports and touches nothing', async () => {
    const journal: Journal = { calls: [], reports: [] };
    const report = await withWorker(fakeActivities(journal, settings()), async (tq) => (await start(tq, { dryRun: true })).result());
    assert.deepEqual(journal.calls, ['plan keep=']);
    assert.equal(report.dryRun, true);
    assert.ok(report.rows.every((r) => r.action.startsWith('would ') && r.after === 'unchanged (dry run)'), JSON.stringify(report.rows));
    assert.deepEqual(report.rows.find((r) => r.target === 'postgres shop.public.orders')?.before, '7 rows');
    assert.equal(journal.reports.length, 1);
    assert.match(report.reportKey, /^reports\/demo-resets\//);
  });

  it('refuses a wrong environment name, a wrong plan hash, a plain approval and the requester; then a typed confirmation wipes', async () => {
    const journal: Journal = { calls: [], reports: [] };
    const report = await withWorker(fakeActivities(journal, settings()), async (tq) => {
      const handle = await start(tq, {});
      const hash = await waitingPlan(handle);
      const details = ((await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string }).currentDetails ?? '';
      assert.match(details, /WAITING FOR CONFIRMATION of the demo reset/);
      assert.ok(details.includes(`send update "confirm" with {"environment": "<type the environment's name>", "plan": "${hash}"`), details);
      assert.ok(details.includes('TRUNCATE ... RESTART IDENTITY CASCADE: postgres shop.public.orders (7 rows)'), details);
      const send = (answer: object) => handle.executeUpdate(confirmUpdate, { args: [answer as never] });
      assert.match(await refusalOf(send({ environment: 'production', plan: hash, by: 'bob', reason: 'reset' })), /typed environment "production" is not this run's environment/);
      assert.match(await refusalOf(send({ plan: hash, by: 'bob', reason: 'reset' })), /must type the environment's name/);
      assert.match(await refusalOf(send({ environment: 'demo', plan: `sha256:${'0'.repeat(64)}`, by: 'bob', reason: 'reset' })), /waits on plan/);
      assert.match(await refusalOf(handle.executeUpdate(approveUpdate, { args: [{ plan: hash, by: 'bob', reason: 'reset' }] })), /waits for a typed confirmation/);
      assert.match(await refusalOf(send({ environment: 'demo', plan: hash, by: 'alice', reason: 'reset' })), /four-eyes/);
      assert.deepEqual(journal.calls, ['plan keep='], 'nothing wiped while refused answers came in');
      // An update is refused to its caller by the validator; a refused signal is kept and shown.
      await handle.signal(confirmSignal, { environment: 'staging', plan: hash, by: 'bob', reason: 'reset' });
      const kept = await eventually('the refused signal in the status', async () => {
        const refusals = (await handle.query(demoResetStatusQuery)).confirmationRefusals;
        return refusals.length > 0 ? refusals : undefined;
      }, 10_000, 50);
      assert.match(kept.join('\n'), /approve \(signal, from bob\) REFUSED: the typed environment "staging" is not this run's environment/);
      assert.equal(await send({ environment: 'demo', plan: hash, by: 'bob', reason: 'demo at 10' }), 'confirmed by bob');
      return handle.result();
    });
    assert.deepEqual(journal.calls, ['plan keep=', ...WIPE]);
    assert.equal(report.verified, true);
    assert.equal(report.confirmation?.outcome, 'approved');
    assert.equal(report.confirmation?.by, 'bob');
    assert.equal(report.rows.find((r) => r.target === 'bucket data')?.after, '0 objects, 0 versions, 0 delete markers, 0 bytes');
  });

  it('an unconfirmed reset times out and fails closed, nothing wiped', async () => {
    const journal: Journal = { calls: [], reports: [] };
    const err = await withWorker(fakeActivities(journal, settings(0.05)), async (tq) => (await start(tq, {})).result().catch((e: unknown) => e));
    assert.equal(failureOf(err).type, Failure.ApprovalTimedOut);
    assert.deepEqual(journal.calls, ['plan keep=']);
    assert.equal(journal.reports[0]?.confirmation?.outcome, 'timed out');
  });

  it('force skips the confirmation, not the guard: a refused plan fails the run with nothing wiped', async () => {
    const journal: Journal = { calls: [], reports: [] };
    const refusing = fakeActivities(journal, settings(), {
      planDemoReset: async () => {
        journal.calls.push('plan');
        throw ApplicationFailure.nonRetryable('demo reset refused (at plan): no demo marker on bucket data', Failure.DemoGuardRefused);
      },
    });
    const err = await withWorker(refusing, async (tq) => (await start(tq, { force: true })).result().catch((e: unknown) => e));
    assert.equal(failureOf(err).type, Failure.DemoGuardRefused);
    assert.match(failureOf(err).message, /bucket data/);
    assert.deepEqual(journal.calls, ['plan'], 'planned once (non-retryable), nothing wiped');
  });

  it('forced, it wipes without waiting; keep is passed to the plan', async () => {
    const journal: Journal = { calls: [], reports: [] };
    const report = await withWorker(fakeActivities(journal, settings()), async (tq) => (await start(tq, { force: true, keep: ['kafka'] })).result());
    assert.equal(journal.calls[0], 'plan keep=kafka');
    assert.deepEqual(journal.calls.slice(1), WIPE);
    assert.equal(report.confirmation?.outcome, 'pre-approved');
    assert.equal(report.forced, true);
  });

  it('a guard failing before a destructive step stops the wipe there: no later step starts', async () => {
    const journal: Journal = { calls: [], reports: [] };
    const failing = fakeActivities(journal, settings(), {
      truncateDemoPostgres: async () => {
        journal.calls.push('truncate postgres shop');
        throw ApplicationFailure.nonRetryable('demo reset refused (before truncating postgres shop): no demo marker on postgres database shop', Failure.DemoGuardRefused);
      },
    });
    const err = await withWorker(failing, async (tq) => (await start(tq, { force: true })).result().catch((e: unknown) => e));
    assert.equal(failureOf(err).type, Failure.DemoGuardRefused);
    assert.deepEqual(journal.calls, ['plan keep=', 'purge orders', 'reset groups', 'truncate postgres shop']);
    assert.match(journal.reports.at(-1)!.verification.join('\n'), /stopped at truncate postgres shop/);
  });

  it('refuses an unknown component in keep at start, nothing planned', async () => {
    const journal: Journal = { calls: [], reports: [] };
    const err = await withWorker(fakeActivities(journal, settings()), async (tq) => (await start(tq, { keep: ['kafka', 'metrics' as never] })).result().catch((e: unknown) => e));
    assert.equal(failureOf(err).type, Failure.InvalidInput);
    assert.match(failureOf(err).message, /input\.keep\.1/);
    assert.deepEqual(journal.calls, []);
  });
});
