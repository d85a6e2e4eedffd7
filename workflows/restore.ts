import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import type { RestorePlan } from '../activities/restore/plan';
import type { RestoreSettings } from '../activities/restore/report';
import { createApprovalGate } from './approval';
import { preApprovalProblem, preApprovalRefused, signedPreApprovalSchema } from './preApproval';
import { preApprovalText, type ApprovalRecord } from '../contracts/approvalTypes';
import { COMPONENTS } from '../contracts/backupTypes';
import { mapLimit } from '../contracts/concurrency';
import { surfacedFailure, surfaceNonRetryable } from './surfacedFailure';
import { checkSystems } from './systemChecks';
import { parseInput } from './input';
import { reportKey } from '../contracts/reportKey';
import { RESTORE_NON_RETRYABLE, restoreStep, restoreTargetsOf, type StepContext } from './restoreSteps';
import type { RestoreReport, RestoreStepResult, RestoreTargets, VerifyResult } from '../contracts/restoreTypes';
import type { SystemName } from '../contracts/healthTypes';
import { Failure } from '../contracts/failures';
import { heartbeatingActivities } from './activityOptions';

const { restoreSettings, planRestore, writeRestoreReport, notify, runOrigin, verifyApprovalSignature, acquireRestoreLeases, releaseRestoreLeases } = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '2 hours', maximumAttempts: 3, nonRetryableErrorTypes: RESTORE_NON_RETRYABLE }),
);

const nameMap = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,39}$/, 'must be a plain identifier of at most 40 characters'));

export const restoreInputSchema = z.strictObject({
  /** A backup id, or "latest" (the default): the newest backup with a manifest. */
  backupId: z.string().min(1).default('latest'),
  components: z.array(z.enum(COMPONENTS)).min(1).optional(),
  /** Restore beside the original: other names per database, ClickHouse database, bucket; a Kafka suffix. */
  targets: z
    .strictObject({
      postgres: nameMap.default({}),
      clickhouse: nameMap.default({}),
      kafkaSuffix: z.string().regex(/^[A-Za-z0-9._-]*$/, 'letters, digits, ".", "_", "-" only').default(''),
      buckets: z.record(z.string(), z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid bucket name')).default({}),
    })
    .prefault({}),
  /** When the outage began (ISO 8601); the workflow's start by default. */
  incidentStartedAt: z.iso.datetime({ offset: true }).optional(),
  rtoTargetMinutes: z.number().positive().optional(),
  rpoTargetMinutes: z.number().positive().optional(),
  /** Not an input: ballast records who started the run (Temporal's start identity). */
  requestedBy: z.undefined({ error: 'not accepted: ballast records who started the run (as Temporal recorded it); four-eyes compares approvers with that' }).optional(),
  /** A signed pre-approval over this run's workflow id, backup id, components and targets; checked at start. */
  preApproved: z.unknown().optional(),
  /**
   * Set by drDrill only (checked: the parent must be a drDrill run): the drill's own approval. It
   * makes this run a drill: every piece goes to its scratch name, and the report is kept with the
   * drills, for the RTO trend.
   */
  drillApproval: z.custom<ApprovalRecord>((v) => typeof v === 'object' && v !== null, 'must be the drill\'s approval record').optional(),
  /**
   * Accept a backup whose manifest is unsigned (made before manifests were signed); named
   * backups only. A signed manifest that does not verify is never accepted. The plan says so.
   */
  allowUnsignedBackup: z.boolean().default(false),
  /** Read every object back and compare sha256 at plan time (default true). */
  verifyChecksums: z.boolean().default(true),
});
export type RestoreInput = z.input<typeof restoreInputSchema>;

export type RestorePhase = 'planning' | 'awaiting approval' | 'restoring' | 'verifying' | 'reporting' | 'done' | 'refused';

export interface RestoreStatus {
  phase: RestorePhase;
  backupId?: string;
  phaseDurationsMs: Record<string, number>;
  tasks: number;
  tasksDone: number;
  bytesTotal: number;
  bytesDone: number;
  running: string[];
  waitingFor?: string;
  /** What a person approves: the plan's hash, its destructive actions, and what it warns of (an unsigned or partial backup). */
  plan?: { hash: string; actions: string[]; warnings: string[] };
  /** Approval answers refused in this run, and why. */
  approvalRefusals: string[];
  /** The live RTO clock: minutes since the incident began, against the target. */
  rto: { incidentStartedAt: string; elapsedMinutes: number; targetMinutes?: number; projectedFinishAt?: string; projectedMinutes?: number };
}

export const restoreStatusQuery = defineQuery<RestoreStatus>('status');

/**
 * Runbook: "restore the platform from a backup".
 * 1. Plan: the backup is complete and intact, the targets answer, and every destructive action is
 *    listed. Anything wrong refuses here, nothing touched.
 * 2. Approval: a person approves the plan (or the input was pre-approved); no answer fails closed.
 * 3. Restore every piece. 4. Verify counts and checksums against the manifest.
 * 5. Report RTO and RPO against their targets; a breach notifies.
 */
export async function restore(input: RestoreInput = {}): Promise<RestoreReport> {
  const started = new Date();
  const request = parseInput('restore', restoreInputSchema, input);
  const kind = request.drillApproval ? 'drill' : 'restore';
  const incident = request.incidentStartedAt ? new Date(request.incidentStartedAt) : started;
  if (incident.getTime() > started.getTime() + 60_000) {
    throw ApplicationFailure.nonRetryable('restore: invalid input: input.incidentStartedAt is in the future', Failure.InvalidInput);
  }
  const { workflowId, runId } = workflowInfo();
  const gate = createApprovalGate({
    notify: async (kind, title, text) => {
      await notify({ kind: kind === 'reminder' ? 'reminder' : 'failure', title, text, workflowId });
    },
  });
  const phaseDurationsMs: Record<string, number> = {};
  let phaseStarted = Date.now();
  let executeStarted: number | undefined;
  let targetMinutes: number | undefined;
  const status: RestoreStatus = {
    phase: 'planning',
    phaseDurationsMs,
    tasks: 0,
    tasksDone: 0,
    bytesTotal: 0,
    bytesDone: 0,
    running: [],
    approvalRefusals: [],
    rto: { incidentStartedAt: incident.toISOString(), elapsedMinutes: 0 },
  };
  setHandler(restoreStatusQuery, () => ({ ...status, approvalRefusals: [...gate.refusals], phaseDurationsMs: { ...phaseDurationsMs, [status.phase]: (phaseDurationsMs[status.phase] ?? 0) + Date.now() - phaseStarted }, rto: rtoClock() }));
  const enter = (phase: RestorePhase, details: string) => {
    phaseDurationsMs[status.phase] = (phaseDurationsMs[status.phase] ?? 0) + Date.now() - phaseStarted;
    phaseStarted = Date.now();
    status.phase = phase;
    setCurrentDetails(details);
  };
  const minutesSince = (t: Date, now = Date.now()) => (now - t.getTime()) / 60_000;
  function rtoClock(): RestoreStatus['rto'] {
    const now = Date.now();
    const clock: RestoreStatus['rto'] = { incidentStartedAt: incident.toISOString(), elapsedMinutes: round(minutesSince(incident, now)), targetMinutes };
    if (executeStarted !== undefined && status.bytesDone > 0 && status.bytesTotal > 0) {
      const rate = status.bytesDone / (now - executeStarted);
      const finish = now + (status.bytesTotal - status.bytesDone) / rate;
      clock.projectedFinishAt = new Date(finish).toISOString();
      clock.projectedMinutes = round(minutesSince(incident, finish));
    }
    return clock;
  }

  // 1. Plan: who asks, whether a pre-approval counts, then the backup and the targets.
  setCurrentDetails(`Planning the restore of backup ${request.backupId}: checking the backup and the targets. Nothing is touched yet.`);
  const settings: RestoreSettings = await restoreSettings();
  targetMinutes = request.rtoTargetMinutes ?? settings.rtoTargetMinutes;
  const rpoTarget = request.rpoTargetMinutes ?? settings.rpoTargetMinutes;
  const targets: RestoreTargets = request.targets;
  const origin = await runOrigin();
  let preApproval: Omit<ApprovalRecord, 'planHash'> | undefined;
  try {
    preApproval = await checkPreApproval();
  } catch (err) {
    enter('refused', `Refused at start: nothing was touched. ${causeMessage(err)}`);
    throw err;
  }
  let plan: RestorePlan;
  try {
    plan = await planRestore({
      restoreId: workflowId,
      backupId: request.backupId,
      components: request.components,
      ...(kind === 'drill' ? { scratch: settings.drill } : { targets }),
      owner: workflowId,
      verifyChecksums: request.verifyChecksums,
      allowUnsignedBackup: request.allowUnsignedBackup,
    });
  } catch (err) {
    enter('refused', `Refused at plan: nothing was touched. ${causeMessage(err)}`);
    throw surfacedFailure(err);
  }
  status.backupId = plan.backupId;
  status.plan = { hash: plan.planHash, actions: plan.actions.map(describeAction), warnings: plan.warnings };
  status.tasks = plan.tasks.length;
  status.bytesTotal = plan.totalBytes;
  const systems = [...new Set<SystemName>([...plan.components, 'objectStore'])];
  const health = await checkSystems(systems, { check: { allowMissingDatabases: true } });
  if (!health.healthy) {
    enter('refused', 'Refused at plan: a target does not answer. Nothing was touched.');
    throw ApplicationFailure.nonRetryable(
      `restore refused at plan, nothing was touched: ${health.summary.filter((l) => l.includes('UNHEALTHY')).join('; ')}`,
      Failure.TargetUnreachable,
      health,
    );
  }

  // Leases, before a person is asked: retention keeps the backup, and no other restore or drill
  // writes these targets until this run ends.
  let leases: string[];
  try {
    leases = await acquireRestoreLeases({
      backupId: plan.backupId,
      targets: restoreTargetsOf(plan.tasks),
      purpose: `${kind} of backup ${plan.backupId}`,
      ...(kind === 'drill' ? { parentWorkflowId: workflowInfo().parent?.workflowId } : {}),
    });
  } catch (err) {
    enter('refused', `Refused at plan: nothing was touched. ${causeMessage(err)}`);
    throw surfacedFailure(err);
  }
  try {
    // 2. Approval of this plan, unless a rule allowed it at start.
    const what = `the ${kind} of backup ${plan.backupId} (${plan.components.join(', ')})`;
    let approval: ApprovalRecord;
    if (preApproval) {
      approval = { ...preApproval, planHash: plan.planHash };
    } else {
      enter('awaiting approval', `Waiting for approval of ${what}.`);
      status.waitingFor = 'approval (update or signal "approve" or "reject", signed, naming the plan hash)';
      approval = await gate.wait({ what, plan: status.plan, requester: origin.requester, policy: settings.approval });
    }
    status.waitingFor = undefined;
    const reportBase = (): Omit<RestoreReport, 'finishedAt' | 'steps' | 'verification' | 'verified' | 'rto' | 'rpo'> => ({
      workflowId,
      runId,
      kind,
      backupId: plan.backupId,
      environment: plan.environment,
      requestedBy: origin.requester,
      incidentStartedAt: incident.toISOString(),
      consistencyPoint: plan.consistencyPoint,
      startedAt: started.toISOString(),
      targets,
      components: plan.components,
      plan: plan.actions,
      planHash: plan.planHash,
      planWarnings: plan.warnings,
      approval,
      phaseDurationsMs,
      reportKey: reportKey(kind === 'drill' ? 'drills' : 'restores', started, workflowId),
    });
    if (approval.outcome === 'rejected' || approval.outcome === 'timed out') {
      const why = approval.outcome === 'rejected' ? `rejected by ${approval.by}: ${approval.reason}` : `no approval within ${settings.approval.timeoutMinutes} min`;
      enter('refused', `Not approved (${why}): nothing was touched.`);
      const report = finishReport(reportBase(), [], [], incident, plan.consistencyPoint, targetMinutes, rpoTarget);
      await writeRestoreReport(report);
      throw ApplicationFailure.nonRetryable(`${kind} of backup ${plan.backupId} not approved (${why}); nothing was touched`, approval.outcome === 'rejected' ? Failure.Rejected : Failure.ApprovalTimedOut, report);
    }

    // 3. Restore.
    enter('restoring', `Restoring backup ${plan.backupId}: ${plan.tasks.length} steps, ${settings.concurrency} at a time.`);
    executeStarted = Date.now();
    const context: StepContext = { plan: plan.stored, restoreId: workflowId };
    let results: RestoreStepResult[];
    try {
      results = await mapLimit(plan.tasks, settings.concurrency, async (task) => {
        const step = restoreStep(task);
        const label = step.label();
        status.running.push(label);
        setCurrentDetails(`Restoring backup ${plan.backupId}: running ${status.running.join(', ')}. RTO clock ${rtoClock().elapsedMinutes} min of ${targetMinutes} min.`);
        const result = await surfaceNonRetryable(step.run(context));
        status.running = status.running.filter((r) => r !== label);
        status.tasksDone++;
        status.bytesDone += step.bytes();
        return result;
      });
    } catch (err) {
      // A step that gave up: the targets may be half-restored. Say so loudly, with a report.
      enter('done', `RESTORE FAILED while running ${status.running.join(', ')}: ${causeMessage(err)}`);
      const report = finishReport(reportBase(), [], [], incident, plan.consistencyPoint, targetMinutes, rpoTarget);
      await writeRestoreReport(report);
      await notify({ kind: 'failure', title: `${kind} of ${plan.backupId} failed`, text: `${causeMessage(err)}\nstill running: ${status.running.join(', ')}; steps done: ${status.tasksDone}/${status.tasks}. Report: ${report.reportKey}`, workflowId });
      throw err;
    }

    // 4. Verify.
    enter('verifying', `Verifying backup ${plan.backupId}'s restore against its manifest.`);
    const verification: VerifyResult[] = await mapLimit(plan.tasks, settings.concurrency, (task) => restoreStep(task).verify(context));
    const verifiedAt = new Date();

    // 5. Report.
    enter('reporting', 'Writing the report.');
    const report = finishReport(reportBase(), results, verification, incident, plan.consistencyPoint, targetMinutes, rpoTarget, verifiedAt);
    await writeRestoreReport(report);
    const breaches = [report.rto.met ? '' : `RTO ${report.rto.measuredMinutes} min > target ${report.rto.targetMinutes} min`, report.rpo.met ? '' : `RPO ${report.rpo.measuredMinutes} min > target ${report.rpo.targetMinutes} min`].filter(Boolean);
    if (breaches.length > 0) {
      await notify({ kind: 'breach', title: `${kind} of ${plan.backupId}: target breached`, text: `${breaches.join('; ')}. Report: ${report.reportKey}`, workflowId });
    }
    if (!report.verified) {
      const failed = verification.flatMap((v) => v.checks.filter((c) => !c.ok).map((c) => `${c.name}: expected ${c.expected}, found ${c.actual}`));
      enter('done', `VERIFICATION FAILED: ${failed.slice(0, 5).join('; ')}`);
      await notify({ kind: 'failure', title: `${kind} of ${plan.backupId}: verification failed`, text: failed.slice(0, 20).join('\n'), workflowId });
      throw ApplicationFailure.nonRetryable(`${kind} of backup ${plan.backupId} failed verification: ${failed.slice(0, 10).join('; ')}`, Failure.VerificationFailed, report);
    }
    enter('done', `Restored and verified backup ${plan.backupId}. RTO ${report.rto.measuredMinutes} min (target ${report.rto.targetMinutes}, ${report.rto.met ? 'met' : 'BREACHED'}), RPO ${report.rpo.measuredMinutes} min (target ${report.rpo.targetMinutes}, ${report.rpo.met ? 'met' : 'BREACHED'}).`);
    return report;
  } finally {
    await CancellationScope.nonCancellable(() => releaseRestoreLeases({ keys: leases, purpose: `${kind} of backup ${plan.backupId}` }));
  }

  /**
   * A pre-approval that a rule allows, as the report's approval record; undefined when the run
   * must wait for a person. Anything else that claims one refuses the run here, nothing touched.
   */
  async function checkPreApproval(): Promise<Omit<ApprovalRecord, 'planHash'> | undefined> {
    const requestedAt = new Date().toISOString();
    if (request.drillApproval) {
      if (origin.parentWorkflowType !== 'drDrill' || kind !== 'drill') {
        throw preApprovalRefused('input.drillApproval is set by a drDrill run for the restore it starts; this run was not started by one');
      }
      if (request.preApproved !== undefined) throw preApprovalRefused('a drill restore carries the drill\'s approval, not input.preApproved');
      if (input.targets !== undefined) throw preApprovalRefused('a drill restore derives its scratch targets from the backup; input.targets is not accepted');
      const drill = request.drillApproval;
      return { ...drill, via: 'parent drill', requester: origin.requester, requestedAt, waitedMs: 0, remindersSent: 0, refusals: [] };
    }
    if (request.preApproved === undefined) return undefined;
    const problem = preApprovalProblem(request.preApproved, request.backupId, new Date());
    if (problem) throw preApprovalRefused(`input.preApproved: ${problem}`);
    const pre = signedPreApprovalSchema.parse(request.preApproved);
    const text = preApprovalText({ workflowId, backupId: request.backupId, components: request.components, targets, expiresAt: pre.expiresAt, reason: pre.reason });
    const check = await verifyApprovalSignature({ text, signature: pre.signature });
    if (!check.ok) throw preApprovalRefused(`input.preApproved: the signature does not pre-approve this workflow id, backup, components and targets: ${check.refusal}`);
    const { approvers, fourEyes } = settings.approval;
    if (approvers.length > 0 && !approvers.includes(check.principal)) throw preApprovalRefused(`input.preApproved: ${check.principal} is not an approver (approvals.approvers: ${approvers.join(', ')})`);
    if (fourEyes && check.principal === origin.requester) throw preApprovalRefused(`input.preApproved: ${check.principal} started this run and cannot pre-approve it too (four-eyes)`);
    return {
      required: true,
      outcome: 'pre-approved',
      requester: origin.requester,
      by: check.principal,
      authentication: 'ssh-signature',
      keyFingerprint: check.keyFingerprint,
      reason: `${pre.reason} (signed pre-approval, expires ${pre.expiresAt})`,
      via: 'input',
      requestedAt,
      waitedMs: 0,
      remindersSent: 0,
      refusals: [],
    };
  }
}

function describeAction(a: { action: string; target: string; detail: string }): string {
  return `${a.action} ${a.target}${a.detail ? `: ${a.detail}` : ''}`;
}

function finishReport(
  base: Omit<RestoreReport, 'finishedAt' | 'steps' | 'verification' | 'verified' | 'rto' | 'rpo'>,
  results: RestoreStepResult[],
  verification: VerifyResult[],
  incident: Date,
  consistencyPoint: string,
  rtoTarget: number,
  rpoTarget: number,
  verifiedAt?: Date,
): RestoreReport {
  const finished = new Date();
  const rtoMinutes = round(((verifiedAt ?? finished).getTime() - incident.getTime()) / 60_000);
  // An incident that began before the backup's consistency point lost nothing the backup holds.
  const rpoMinutes = Math.max(0, round((incident.getTime() - new Date(consistencyPoint).getTime()) / 60_000));
  const verified = verifiedAt !== undefined && verification.every((v) => v.ok);
  return {
    ...base,
    finishedAt: finished.toISOString(),
    steps: results,
    verification,
    verified,
    rto: { targetMinutes: rtoTarget, measuredMinutes: rtoMinutes, met: verified && rtoMinutes <= rtoTarget },
    rpo: { targetMinutes: rpoTarget, measuredMinutes: rpoMinutes, met: rpoMinutes <= rpoTarget },
  };
}

function round(minutes: number): number {
  return Math.round(minutes * 100) / 100;
}

function causeMessage(err: unknown): string {
  const e = err as { cause?: { message?: string }; message?: string };
  return e.cause?.message ?? e.message ?? String(err);
}


