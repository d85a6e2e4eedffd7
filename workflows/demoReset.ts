import { ApplicationFailure, CancellationScope, defineQuery, proxyActivities, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import type { ApprovalRecord } from '../contracts/approvalTypes';
import { backupIdProblem } from '../contracts/backupId';
import { COMPONENTS } from '../contracts/backupTypes';
import { goldenMismatches, leftovers, reportRows } from '../contracts/demoResetRows';
import type { DemoFigures, DemoResetPlan, DemoResetReport, GoldenReseed, Reseed } from '../contracts/demoResetTypes';
import type { RestoreStepResult, VerifyResult } from '../contracts/restoreTypes';
import { Failure } from '../contracts/failures';
import { reportKey } from '../contracts/reportKey';
import { heartbeatingActivities } from './activityOptions';
import { createApprovalGate } from './approval';
import { parseInput } from './input';
import { restoreStep, restoreTargetsOf, type StepContext } from './restoreSteps';
import { surfacedFailure, surfaceNonRetryable } from './surfacedFailure';

const NON_RETRYABLE = [Failure.DemoGuardRefused, Failure.InvalidInput, Failure.UnknownTopic];
const { demoResetSettings, planDemoReset, demoResetFigures, writeDemoResetReport, notify, runOrigin, acquireRestoreLeases, releaseRestoreLeases, verifyGoldenObjects } = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '30 minutes', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE }),
);
// The wipe's steps: long ones heartbeat; each is idempotent, so a retry (a worker killed) redoes it safely.
const wipe = proxyActivities<Activities>(heartbeatingActivities({ startToCloseTimeout: '2 hours', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE }));

export const demoResetInputSchema = z.strictObject({
  /** Plan only: the guard and the real figures, nothing touched. */
  dryRun: z.boolean().default(false),
  /** Skips the confirmation, and nothing else: the guard still refuses outside demo or without markers. */
  force: z.boolean().default(false),
  /** Components kept as they are; demoReset.keep by default. */
  keep: z.array(z.enum(COMPONENTS)).optional(),
  /** "empty", or {"backup": "<id>"} to load a golden backup after the wipe; demoReset.goldenBackupId by default ("empty" overrides it). */
  reseed: z
    .union([
      z.literal('empty'),
      z.strictObject({
        backup: z.string().superRefine((id, ctx) => {
          const problem = backupIdProblem(id);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
      }),
    ])
    .optional(),
  requestedBy: z.undefined({ error: 'not accepted: ballast records who started the run (as Temporal recorded it)' }).optional(),
});
export type DemoResetInput = z.input<typeof demoResetInputSchema>;

export type DemoResetPhase = 'planning' | 'awaiting confirmation' | 'wiping' | 'reseeding' | 'verifying' | 'reporting' | 'done' | 'refused' | 'failed';

export interface DemoResetStatus {
  phase: DemoResetPhase;
  dryRun: boolean;
  phaseDurationsMs: Record<string, number>;
  /** What a person confirms: the plan's hash and its actions. */
  plan?: { hash: string; actions: string[] };
  steps: number;
  stepsDone: number;
  running?: string;
  waitingFor?: string;
  /** Confirmation answers refused in this run, and why. */
  confirmationRefusals: string[];
}
export const demoResetStatusQuery = defineQuery<DemoResetStatus>('status');

interface Step {
  label: string;
  run: () => Promise<unknown>;
}

/**
 * Runbook: "reset the demo".
 * 1. Plan (the dry run): the config says demo and every target carries the demo marker, else
 *    refused whatever `force` says; then the real figures of everything the reset would wipe.
 * 2. Confirmation of that plan (typed environment name and plan hash), unless `force`.
 * 3. Wipe, component by component, each step checking the guard again right before it acts.
 * 4. Reseed from the golden backup, if there is one: the restore's own steps, into the demo's own
 *    names, each after the guard again. Then verify the end state: empty, or the golden backup's.
 * 5. Report.
 */
export async function demoReset(input: DemoResetInput = {}): Promise<DemoResetReport> {
  const started = new Date();
  const request = parseInput('demoReset', demoResetInputSchema, input);
  const { workflowId, runId } = workflowInfo();
  const gate = createApprovalGate({
    notify: async (kind, title, text) => {
      await notify({ kind: kind === 'reminder' ? 'reminder' : 'failure', title, text, workflowId });
    },
  });
  const phaseDurationsMs: Record<string, number> = {};
  let phaseStarted = Date.now();
  const status: DemoResetStatus = { phase: 'planning', dryRun: request.dryRun, phaseDurationsMs, steps: 0, stepsDone: 0, confirmationRefusals: [] };
  setHandler(demoResetStatusQuery, () => ({
    ...status,
    confirmationRefusals: [...gate.refusals],
    phaseDurationsMs: { ...phaseDurationsMs, [status.phase]: (phaseDurationsMs[status.phase] ?? 0) + Date.now() - phaseStarted },
  }));
  const enter = (phase: DemoResetPhase, details: string) => {
    phaseDurationsMs[status.phase] = (phaseDurationsMs[status.phase] ?? 0) + Date.now() - phaseStarted;
    phaseStarted = Date.now();
    status.phase = phase;
    setCurrentDetails(details);
  };

  // 1. Plan: the guard, then the figures. Nothing is touched.
  setCurrentDetails(`Planning the demo reset${request.dryRun ? ' (dry run)' : ''}: checking the environment and every system's demo marker, then counting what would be wiped. Nothing is touched.`);
  const settings = await demoResetSettings();
  const origin = await runOrigin();
  const keep = request.keep ?? settings.keep;
  const reseed: Reseed = request.reseed ?? (settings.goldenBackupId ? { backup: settings.goldenBackupId } : 'empty');
  const reseedField = request.reseed ? 'input.reseed.backup' : 'demoReset.goldenBackupId';
  let plan: DemoResetPlan;
  try {
    plan = await planDemoReset({ keep, reseed, reseedField });
  } catch (err) {
    enter('refused', `Demo reset refused at plan: nothing was touched. ${causeMessage(err)}`);
    throw surfacedFailure(err);
  }
  status.plan = { hash: plan.hash, actions: plan.actions };
  const report = (rows: DemoResetReport['rows'], extra: Partial<DemoResetReport> = {}): DemoResetReport => ({
    workflowId,
    runId,
    environment: plan.environment,
    dryRun: request.dryRun,
    forced: request.force,
    requestedBy: origin.requester,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    planHash: plan.hash,
    reseed,
    markers: plan.markers,
    rows,
    verified: false,
    verification: [],
    phaseDurationsMs: { ...phaseDurationsMs },
    reportKey: reportKey('demo-resets', started, workflowId),
    ...extra,
  });

  if (request.dryRun) {
    enter('reporting', 'Dry run: writing the plan as the report.');
    const dry = report(reportRows(plan, undefined, true));
    await writeDemoResetReport(dry);
    enter('done', `Dry run done, nothing touched. Plan ${plan.hash}: ${plan.actions.length} actions; report ${dry.reportKey}.`);
    return dry;
  }

  // Leases, before anyone is asked, as a restore takes them: retention keeps the golden backup,
  // and no restore or drill writes the demo's targets meanwhile.
  const golden = plan.golden;
  let leases: string[] = [];
  const leasePurpose = golden ? `demo reset reseed from golden backup ${golden.backupId}` : '';
  if (golden) {
    try {
      leases = await acquireRestoreLeases({ backupId: golden.backupId, targets: restoreTargetsOf(golden.tasks), purpose: leasePurpose });
    } catch (err) {
      enter('refused', `Demo reset refused at plan: nothing was touched. ${causeMessage(err)}`);
      throw surfacedFailure(err);
    }
  }
  try {
    return await confirmWipeReseed();
  } finally {
    if (leases.length > 0) await CancellationScope.nonCancellable(() => releaseRestoreLeases({ keys: leases, purpose: leasePurpose }));
  }

  async function confirmWipeReseed(): Promise<DemoResetReport> {
    // 2. Confirmation, through the approval gate: the typed environment name and this plan's hash.
    let confirmation: ApprovalRecord;
    if (request.force) {
      confirmation = { required: false, outcome: 'pre-approved', planHash: plan.hash, requester: origin.requester, by: origin.requester, authentication: 'policy', reason: 'input.force: confirmation skipped (the guard was not)', via: 'input', requestedAt: new Date().toISOString(), waitedMs: 0, remindersSent: 0, refusals: [] };
    } else {
      enter('awaiting confirmation', 'Waiting for confirmation of the demo reset.');
      status.waitingFor = 'confirmation (update or signal "confirm" with the typed environment name and the plan hash)';
      confirmation = await gate.wait({ what: `the demo reset of ${plan.components.join(', ')} in environment ${plan.environment}${golden ? `, reseeded from golden backup ${golden.backupId}` : ''}`, plan: status.plan!, requester: origin.requester, policy: settings.confirmation, typedEnvironment: plan.environment });
      status.waitingFor = undefined;
      if (confirmation.outcome !== 'approved') {
        const why = confirmation.outcome === 'rejected' ? `rejected by ${confirmation.by}: ${confirmation.reason}` : `not confirmed within ${settings.confirmation.timeoutMinutes} min`;
        enter('refused', `Demo reset not confirmed (${why}): nothing was touched.`);
        const refused = report(reportRows(plan, undefined, true), { confirmation });
        await writeDemoResetReport(refused);
        throw ApplicationFailure.nonRetryable(`demo reset not confirmed (${why}); nothing was touched`, confirmation.outcome === 'rejected' ? Failure.Rejected : Failure.ApprovalTimedOut, refused);
      }
    }

    // 3. Wipe, in the plan's order; each step re-checks the guard itself before it acts. 4. Then the reseed.
    // The reseed's steps read the restore plan this run stored at plan time, as a restore's do.
    const context: StepContext | undefined = golden ? { plan: golden.plan, restoreId: workflowId } : undefined;
    const reseedSteps: RestoreStepResult[] = [];
    const wiping = wipeSteps(plan);
    const reseeding = golden && context ? goldenSteps(golden, context, reseedSteps) : [];
    const steps = [...wiping, ...reseeding];
    status.steps = steps.length;
    enter('wiping', `Wiping the demo: ${wiping.length} steps${golden ? `, then ${reseeding.length} to reseed it from golden backup ${golden.backupId}` : ''}.`);
    try {
      for (const [i, step] of steps.entries()) {
        if (i === wiping.length) enter('reseeding', `Reseeding the demo from golden backup ${golden!.backupId}: ${reseeding.length} steps.`);
        status.running = step.label;
        setCurrentDetails(`${status.phase === 'reseeding' ? 'Reseeding' : 'Wiping'} the demo: ${step.label} (${status.stepsDone + 1} of ${steps.length}).`);
        await surfaceNonRetryable(step.run());
        status.stepsDone++;
      }
      status.running = undefined;
    } catch (err) {
      // After the first failed step no other starts: the demo may be half-wiped, and the report says how far it got.
      enter('failed', `DEMO RESET FAILED at ${status.running}: ${causeMessage(err)}`);
      const failed = report(reportRows(plan, undefined, false), { confirmation, reseedSteps, verification: [`stopped at ${status.running}: ${causeMessage(err)}`, `steps done: ${status.stepsDone} of ${steps.length}`] });
      await writeDemoResetReport(failed);
      await notify({ kind: 'failure', title: 'demo reset failed', text: `${causeMessage(err)}\nsteps done: ${status.stepsDone}/${steps.length}. Report: ${failed.reportKey}`, workflowId });
      throw err;
    }

    // Verify: every wiped figure is zero (reseed "empty"), or equal to the golden backup's, with
    // the restore's own checks (row counts and checksums, rows per partition, messages, objects)
    // and every object's sha256 against the golden copy.
    enter('verifying', golden ? `Verifying the demo against golden backup ${golden.backupId}'s manifest.` : 'Verifying that everything wiped is empty.');
    const after: DemoFigures = await demoResetFigures({ components: plan.components });
    let reseedChecks: VerifyResult[] | undefined;
    let problems: string[];
    if (golden && context) {
      reseedChecks = [];
      for (const task of golden.tasks) {
        reseedChecks.push(await restoreStep(task).verify(context));
        if (task.kind === 'bucket') reseedChecks.push(await verifyGoldenObjects({ plan: golden.plan, restoreId: workflowId, task: task.index }));
      }
      problems = [...goldenMismatches(after, golden), ...reseedChecks.flatMap((v) => v.checks.filter((c) => !c.ok).map((c) => `${c.name}: expected ${c.expected}, found ${c.actual}`))];
    } else {
      problems = leftovers(after);
    }
    const verifiedText = golden ? `equal to golden backup ${golden.backupId}: ${reseedChecks!.reduce((n, v) => n + v.checks.length, 0)} checks against its manifest, and every figure` : 'every wiped figure is zero';

    // 5. Report.
    enter('reporting', 'Writing the report.');
    const done = report(reportRows(plan, after, false), { confirmation, verified: problems.length === 0, verification: problems.length === 0 ? [verifiedText] : problems, ...(golden ? { reseedSteps, reseedChecks } : {}) });
    await writeDemoResetReport(done);
    if (problems.length > 0) {
      enter('failed', `DEMO RESET VERIFICATION FAILED: ${problems.slice(0, 5).join('; ')}`);
      await notify({ kind: 'failure', title: 'demo reset: verification failed', text: problems.slice(0, 20).join('\n'), workflowId });
      throw ApplicationFailure.nonRetryable(`demo reset failed verification: ${problems.slice(0, 10).join('; ')}`, Failure.VerificationFailed, done);
    }
    enter('done', `Demo reset done and verified: ${steps.length} steps; kept: ${plan.kept.join(', ') || 'nothing'}; ${golden ? `reseeded from golden backup ${golden.backupId}` : 'left empty'}. Report ${done.reportKey}.`);
    return done;
  }
}

/**
 * The reseed: each of the golden backup's restore steps (the restore's own activities, reading
 * the stored plan this run made), the guard checked again right before it; then the wiped copies
 * the restore steps keep aside are dropped.
 */
function goldenSteps(golden: GoldenReseed, context: StepContext, results: RestoreStepResult[]): Step[] {
  const steps: Step[] = golden.tasks.map((task) => {
    const step = restoreStep(task);
    const label = `load ${step.label()} from golden backup ${golden.backupId}`;
    return {
      label,
      run: async () => {
        await wipe.checkDemoGuard({ components: [task.component], what: `before the reseed step ${label}` });
        results.push(await step.run(context));
      },
    };
  });
  steps.push({ label: 'drop the wiped copies the reseed replaced', run: () => wipe.dropWipedDemoCopies({ restoreId: context.restoreId, tasks: golden.tasks }) });
  return steps;
}

/** The wipe, one step per topic, group set, database and bucket, in the plan's order. */
function wipeSteps(plan: DemoResetPlan): Step[] {
  const { kafka, postgres, clickhouse, objectStore } = plan.figures;
  const steps: Step[] = [];
  for (const topic of kafka?.topics ?? []) {
    steps.push({ label: `purge kafka topic ${topic.topic}`, run: () => wipe.purgeDemoTopic({ topic }) });
  }
  if (kafka && kafka.groups.length > 0) {
    steps.push({ label: `reset ${kafka.groups.length} consumer groups`, run: () => wipe.resetDemoGroups({ groups: kafka.groups }) });
  }
  for (const db of postgres ?? []) {
    steps.push({ label: `truncate postgres ${db.database}`, run: () => wipe.truncateDemoPostgres({ database: db.database, tables: db.tables.map((t) => t.table) }) });
  }
  for (const db of clickhouse ?? []) {
    steps.push({ label: `truncate clickhouse ${db.database}`, run: () => wipe.truncateDemoClickHouse({ database: db.database, tables: db.tables.map((t) => t.table) }) });
  }
  for (const b of objectStore ?? []) {
    steps.push({ label: `empty bucket ${b.bucket}`, run: () => wipe.emptyDemoBucket({ bucket: b.bucket }) });
  }
  return steps;
}

function causeMessage(err: unknown): string {
  const e = err as { cause?: { message?: string }; message?: string };
  return e.cause?.message ?? e.message ?? String(err);
}
