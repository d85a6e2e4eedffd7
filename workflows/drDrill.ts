import { CancellationScope, ApplicationFailure, defineQuery, executeChild, proxyActivities, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import { createApprovalGate } from './approval';
import { COMPONENTS } from '../contracts/backupTypes';
import { parseInput } from './input';
import { surfacedFailure } from './surfacedFailure';
import { restore, type RestoreInput } from './restore';
import { findTask, restoreTargetsOf } from './restoreSteps';
import type { ApprovalRecord } from '../contracts/approvalTypes';
import type { RestoreReport, RestoreTargets } from '../contracts/restoreTypes';
import { Failure } from '../contracts/failures';
import { heartbeatingActivities } from './activityOptions';

const { restoreSettings, planRestore, notify, listDrillReports, runOrigin, acquireRestoreLeases, releaseRestoreLeases } = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '2 hours', maximumAttempts: 3 }),
);
const teardown = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '2 hours', maximumAttempts: 5, nonRetryableErrorTypes: [Failure.InvalidInput] }),
);

export const inputSchema = z.strictObject({
  components: z.array(z.enum(COMPONENTS)).min(1).optional(),
  requestedBy: z.undefined({ error: 'not accepted: ballast records who started the run (as Temporal recorded it)' }).optional(),
  preApproved: z
    .undefined({ error: 'not accepted: a drill starts without a person only by config (drill.schedulePreApproved for its own schedule, drill.scratchPreApproved for any drill); otherwise it waits for an approval of its plan' })
    .optional(),
  rtoTargetMinutes: z.number().positive().optional(),
  rpoTargetMinutes: z.number().positive().optional(),
});
export type DrDrillInput = z.input<typeof inputSchema>;

export interface DrDrillStatus {
  phase: 'planning' | 'awaiting approval' | 'restoring' | 'tearing down' | 'done';
  backupId?: string;
  /** What a person approves: the pinned plan's hash and its destructive actions. */
  plan?: { hash: string; actions: string[] };
  /** Approval answers refused in this run, and why. */
  approvalRefusals: string[];
}
export const drillStatusQuery = defineQuery<DrDrillStatus>('status');

export interface DrDrillResult {
  report: RestoreReport;
  scratchTargets: RestoreTargets;
  teardown: { removed: string[]; failed: string[] };
  /** Every kept drill report's RTO, oldest first, this one included. */
  rtoTrend: { startedAt: string; rtoMinutes: number; met: boolean }[];
}

/**
 * Runbook: "monthly DR drill". Plan the restore of the latest complete backup into scratch
 * targets beside production (names with the drill suffix); a person approves that plan unless the
 * config lets this drill start alone; restore, verify, report RTO and RPO, and tear the scratch
 * targets down: always, even when the drill fails or is cancelled.
 */
export async function drDrill(input: DrDrillInput = {}): Promise<DrDrillResult> {
  const request = parseInput('drDrill', inputSchema, input);
  const { workflowId } = workflowInfo();
  const gate = createApprovalGate({
    notify: async (kind, title, text) => {
      await notify({ kind: kind === 'reminder' ? 'reminder' : 'failure', title, text, workflowId });
    },
  });
  const status: DrDrillStatus = { phase: 'planning', approvalRefusals: [] };
  setHandler(drillStatusQuery, () => ({ ...status, approvalRefusals: [...gate.refusals] }));
  const settings = await restoreSettings();
  const origin = await runOrigin();
  // The restore this drill starts: it owns, and marks, every scratch target it creates.
  const restoreId = `${workflowId}-restore`;

  // Plan, read-only: pins the backup (a backup finishing meanwhile must not change what is
  // restored or torn down), gives every piece the backup holds a scratch name (configured or
  // not), refuses a scratch name that exists and is not this drill's, and learns which Kafka
  // topics and groups the scratch copy will have.
  let pinned: Awaited<ReturnType<typeof planRestore>>;
  try {
    pinned = await planRestore({ restoreId, owner: restoreId, backupId: 'latest', components: request.components, scratch: settings.drill, verifyChecksums: false });
  } catch (err) {
    status.phase = 'done';
    setCurrentDetails(`DR drill refused at plan: nothing was touched. ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
    throw surfacedFailure(err);
  }
  const scratchTargets: RestoreTargets = pinned.targets;
  const kafkaTask = findTask(pinned.tasks, 'kafka');
  status.backupId = pinned.backupId;
  // The drill holds the backup and its scratch targets from here through its teardown: a second
  // drill is refused now, before anyone is asked, and can never tear down this one's targets.
  const purpose = `DR drill of backup ${pinned.backupId}`;
  let leases: string[];
  try {
    leases = await acquireRestoreLeases({ backupId: pinned.backupId, targets: restoreTargetsOf(pinned.tasks), purpose });
  } catch (err) {
    status.phase = 'done';
    throw surfacedFailure(err);
  }

  // Approval to start: a person approves the pinned plan, unless the config lets this drill go.
  const policyRule =
    settings.drill.schedulePreApproved && origin.scheduleId === settings.drill.scheduleId
      ? `started by its schedule ${origin.scheduleId} (drill.schedulePreApproved)`
      : settings.drill.scratchPreApproved
        ? 'drill.scratchPreApproved: drills into scratch targets start without a person'
        : undefined;
  const plan = { hash: pinned.planHash, actions: pinned.actions.map((a) => `${a.action} ${a.target}`) };
  status.plan = plan;
  if (!policyRule) status.phase = 'awaiting approval';
  const approval: ApprovalRecord = policyRule
    ? { required: false, outcome: 'pre-approved', planHash: plan.hash, requester: origin.requester, by: 'policy', authentication: 'policy', reason: policyRule, via: 'policy', requestedAt: new Date().toISOString(), waitedMs: 0, remindersSent: 0, refusals: [] }
    : await gate.wait({ what: `a DR drill of backup ${pinned.backupId} into scratch targets (${Object.values(scratchTargets.postgres).join(', ')}, ...)`, plan, requester: origin.requester, policy: settings.approval });
  if (approval.outcome !== 'approved' && approval.outcome !== 'pre-approved') {
    status.phase = 'done';
    await releaseRestoreLeases({ keys: leases, purpose });
    throw ApplicationFailure.nonRetryable(`DR drill not started: ${approval.outcome}${approval.by ? ` by ${approval.by}` : ''}; nothing was touched`, approval.outcome === 'rejected' ? Failure.Rejected : Failure.ApprovalTimedOut, approval);
  }

  let report: RestoreReport | undefined;
  const removed: string[] = [];
  const failed: string[] = [];
  try {
    const restoreInput: RestoreInput = {
      backupId: pinned.backupId,
      components: request.components,
      drillApproval: approval,
      rtoTargetMinutes: request.rtoTargetMinutes,
      rpoTargetMinutes: request.rpoTargetMinutes,
    };
    status.phase = 'restoring';
    setCurrentDetails('DR drill: restoring the latest backup into scratch targets (see the child restore workflow).');
    report = await executeChild(restore, { workflowId: restoreId, args: [restoreInput] });
  } finally {
    // Teardown runs whatever happened above, cancellation included.
    await CancellationScope.nonCancellable(async () => {
      status.phase = 'tearing down';
      setCurrentDetails('DR drill: tearing the scratch targets down.');
      const attempt = async (label: string, fn: () => Promise<unknown>) => {
        try {
          await fn();
          removed.push(label);
        } catch (err) {
          failed.push(`${label}: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
        }
      };
      // Only what carries the restore run's marker is removed: a name someone else took since
      // the plan is left alone, and reported.
      for (const db of Object.values(scratchTargets.postgres)) await attempt(`postgres ${db}`, () => teardown.dropPostgresDatabase({ database: db, owner: restoreId }));
      for (const db of Object.values(scratchTargets.clickhouse)) await attempt(`clickhouse ${db}`, () => teardown.dropClickHouseDatabase({ database: db, owner: restoreId }));
      for (const b of Object.values(scratchTargets.buckets)) await attempt(`bucket ${b}`, () => teardown.deleteScratchBucket({ bucket: b, owner: restoreId }));
      if (kafkaTask) {
        await attempt(`kafka topics and groups *${kafkaTask.suffix}`, () => teardown.deleteKafkaRestoreTargets({ restoreId, plan: pinned.stored, task: kafkaTask.index }));
      }
      if (failed.length > 0) {
        await notify({ kind: 'failure', title: 'DR drill teardown incomplete', text: failed.join('\n'), workflowId });
      }
      await releaseRestoreLeases({ keys: leases, purpose });
    });
  }
  if (!report) throw ApplicationFailure.nonRetryable('DR drill: the restore returned no report', Failure.DrillFailed);
  const trend = await listDrillReports();
  status.phase = 'done';
  setCurrentDetails(`DR drill done: RTO ${report.rto.measuredMinutes} min (${report.rto.met ? 'met' : 'BREACHED'}), RPO ${report.rpo.measuredMinutes} min; scratch targets removed: ${removed.length}, failed: ${failed.length}.`);
  return {
    report,
    scratchTargets,
    teardown: { removed, failed },
    rtoTrend: trend.map((t) => ({ startedAt: t.startedAt, rtoMinutes: t.rtoMinutes, met: t.rtoMet })),
  };
}
