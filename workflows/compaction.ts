import { condition, defineQuery, executeChild, proxyActivities, proxyLocalActivities, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import type { ApprovalRecord } from '../contracts/approvalTypes';
import { MAINTENANCE_SYSTEMS, type MaintenanceReport, type MaintenanceStep, type StepAttempt, type StepResult } from '../contracts/maintenanceTypes';
import { openWindow } from '../contracts/maintenanceWindow';
import { reportKey } from '../contracts/reportKey';
import { heartbeatingActivities } from './activityOptions';
import { createApprovalGate } from './approval';
import { parseInput } from './input';
import { platformBackup } from './platformBackup';
import { handleRunControls } from './runControls';

const { planMaintenance, writeMaintenanceReport, runOrigin, notify, clickhouseMergeProgress } = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '10 minutes', maximumAttempts: 3 }),
);
// The config, read by the worker inside the first workflow task: a task round trip less.
const { maintenanceSettings } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});
// Idempotent steps: a retry (after a worker's death) finds what its predecessor did. Each checks
// the server's load itself just before it acts, so nothing runs between the check and the step.
const steps = proxyActivities<Activities>(heartbeatingActivities({ startToCloseTimeout: '4 hours', maximumAttempts: 3 }));

export const compactionInputSchema = z.strictObject({
  /** Only plan: report what would be done, touch nothing. */
  dryRun: z.boolean().default(false),
  /** Systems to maintain; every one by default. */
  systems: z.array(z.enum(MAINTENANCE_SYSTEMS)).min(1).optional(),
  /** Start no step after this time (ISO 8601), even if the window is still open. */
  stopBy: z.iso.datetime({ offset: true }).optional(),
  requestedBy: z.undefined({ error: 'not accepted: ballast records who started the run (as Temporal recorded it)' }).optional(),
});
export type CompactionInput = z.input<typeof compactionInputSchema>;

export interface CompactionStatus {
  phase: 'planning' | 'waiting for approval' | 'applying' | 'waiting: server busy' | 'paused' | 'done';
  planHash?: string;
  window: { opened?: string; closes?: string };
  /** The step running now, and how far it has got (a merge's progress from system.merges). */
  step?: string;
  progress?: { progress: number; elapsedSeconds: number };
  done: number;
  total: number;
  left: string[];
  paused: boolean;
  abortRequested: boolean;
  approval?: { what: string; plan: { hash: string; actions: string[] } };
  approvalRefusals: string[];
  elapsedMs: number;
}
export const compactionStatusQuery = defineQuery<CompactionStatus>('status');

/**
 * Runbook: "nightly maintenance", inside the maintenance window.
 * Plan from each system's own tables (read-only; a dry run stops here). Ask a person to approve
 * the destructive steps (drops, deletes, config changes, expiry) unless config pre-approves their
 * class; merges and vacuums go on meanwhile. Then one step at a time: before each, check the
 * window, a pause or abort, and the server's load; run it; verify it. Report before and after.
 */
export async function compaction(input: CompactionInput = {}): Promise<MaintenanceReport> {
  const request = parseInput('compaction', compactionInputSchema, input);
  const started = new Date();
  const { workflowId } = workflowInfo();
  const settings = await maintenanceSettings();
  const window = openWindow(settings.window, started);
  const stopBy = request.stopBy ? new Date(request.stopBy).getTime() : Infinity;
  const closesAt = window ? Math.min(window.closes.getTime(), stopBy) : undefined;
  const windowOpen = () => closesAt !== undefined && Date.now() < closesAt;
  const results: StepResult[] = [];
  let backupId: string | undefined;
  let backupPartitions: Record<string, string[]> | undefined;
  let backupFailed: string | undefined;
  const controls = handleRunControls();
  const status: CompactionStatus = {
    phase: 'planning',
    window: { opened: window?.opened.toISOString(), closes: closesAt === undefined ? undefined : new Date(closesAt).toISOString() },
    done: 0,
    total: 0,
    left: [],
    paused: false,
    abortRequested: false,
    approvalRefusals: [],
    elapsedMs: 0,
  };
  const gate = createApprovalGate({
    notify: async (kind, title, text) => {
      await notify({ kind: kind === 'reminder' ? 'reminder' : 'failure', title, text, workflowId });
    },
  });
  const show = (phase: CompactionStatus['phase'], details: string) => {
    status.phase = phase;
    const waiting = gate.waitingOn;
    setCurrentDetails(waiting ? `${details}\nAlso WAITING FOR APPROVAL of ${waiting.what} (plan ${waiting.plan.hash}): query "status" for the actions; send update "approve" or "reject".` : details);
  };
  setHandler(compactionStatusQuery, () => ({ ...status, approval: gate.waitingOn, approvalRefusals: [...gate.refusals], paused: controls.paused, abortRequested: controls.abortedBy !== undefined, elapsedMs: Date.now() - started.getTime() }));

  // 1. Plan, read-only.
  show('planning', 'Planning: reading system.parts, pg_stat_user_tables, topic configs and bucket listings. Nothing is changed.');
  const plan = await planMaintenance({ now: started.toISOString(), systems: request.systems ?? [...MAINTENANCE_SYSTEMS] });
  status.planHash = plan.hash;
  status.total = plan.steps.length;
  const pending = [...plan.steps];
  status.left = pending.map((s) => s.summary);

  const finish = async (outcome: MaintenanceReport['outcome'], approval?: ApprovalRecord): Promise<MaintenanceReport> => {
    const finished = new Date();
    const report: MaintenanceReport = {
      workflowId,
      outcome,
      dryRun: request.dryRun,
      window: status.window,
      plan,
      approval,
      steps: results,
      left: pending.map((s) => ({ id: s.id, summary: s.summary })),
      backupId,
      backupPartitions,
      bytesReclaimed: results.reduce((sum, r) => sum + (r.bytesReclaimed ?? 0), 0),
      abortedBy: controls.abortedBy,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationMs: finished.getTime() - started.getTime(),
      reportKey: reportKey('maintenance', started, workflowId),
    };
    await writeMaintenanceReport(report);
    const failed = results.filter((r) => r.outcome === 'failed');
    const backedUp = backupId ? ` The dropped partitions are in backup ${backupId}; to undo a drop, see README "Undoing a drop".` : '';
    show('done', `compaction ${outcome}: ${results.filter((r) => r.outcome === 'done').length} step(s) done, ${failed.length} failed, ${report.left.length} left; report at ${report.reportKey}.${backedUp}`);
    if (failed.length) await notify({ kind: 'failure', title: `compaction: ${failed.length} step(s) failed`, text: failed.map((r) => `${r.summary}: ${r.reason}`).join('\n'), workflowId });
    return report;
  };

  if (request.dryRun) return finish('dry run');
  if (!windowOpen()) return finish('window closed');

  // 2. Approval of the destructive steps, unless config pre-approves their class.
  const destructive = plan.steps.filter((s) => s.destructive);
  const needsPerson = destructive.filter((s) => !settings.preApproved.includes(s.destructive!));
  let approval: ApprovalRecord | undefined;
  let approvalWait: Promise<ApprovalRecord> | undefined;
  if (needsPerson.length) {
    const origin = await runOrigin();
    approvalWait = gate.wait({
      what: `compaction's destructive steps (${needsPerson.length})`,
      plan: { hash: plan.hash, actions: needsPerson.map((s) => s.summary) },
      requester: origin.requester,
      policy: settings.approval,
      stopWhen: () => controls.abortedBy,
    });
  } else if (destructive.length) {
    approval = { required: false, outcome: 'pre-approved', planHash: plan.hash, authentication: 'policy', via: 'policy', reason: `maintenance.preApproved: ${settings.preApproved.join(', ')}`, requestedAt: started.toISOString(), waitedMs: 0, remindersSent: 0, refusals: [] };
  }

  /** Holds while paused; then whether a new step may start, or why not. */
  const mayStart = async (): Promise<string | undefined> => {
    if (controls.paused && controls.abortedBy === undefined) {
      show('paused', `PAUSED before the next step (${pending.length} left). Send signal "resume" or "abort" with {"by": "<name>"}.`);
      await condition(() => !controls.paused || controls.abortedBy !== undefined);
    }
    if (controls.abortedBy !== undefined) return 'aborted';
    if (!windowOpen()) return 'window closed';
    return undefined;
  };

  const mergeWithProgress = async (step: Extract<MaintenanceStep, { kind: 'merge' }>): Promise<StepAttempt> => {
    let settled = false;
    const running = steps.mergeClickHousePartition({ step, workflowId }).finally(() => (settled = true));
    while (!(await condition(() => settled, '10 seconds'))) {
      const progress = await clickhouseMergeProgress({ database: step.database, table: step.table, partitionId: step.partitionId }).catch(() => undefined);
      status.progress = progress;
      if (progress) show('applying', `Merging ${step.database}.${step.table} partition ${step.partition}: ${Math.round(progress.progress * 100)} % after ${Math.round(progress.elapsedSeconds)} s. Signal "pause" or "abort" stops before the next step.`);
    }
    return running;
  };

  const run = (step: MaintenanceStep): Promise<StepAttempt> => {
    switch (step.kind) {
      case 'merge':
        return mergeWithProgress(step);
      case 'drop':
        return steps.dropClickHousePartition({ step });
      case 'rowDelete':
        return steps.deleteClickHouseRows({ step });
      case 'vacuum':
        return steps.vacuumPostgresTable({ step });
      case 'topicConfig':
        return steps.fixKafkaTopicConfig({ step });
      case 'expire':
        return steps.expireObjects({ step });
      case 'pgPartitionDrop':
        return steps.dropPostgresPartition({ step, workflowId });
      case 'recordDelete':
        return steps.deleteKafkaRecords({ step });
    }
  };

  let stoppedBy: string | undefined;
  const showApplying = (step: MaintenanceStep) =>
    show('applying', `Step ${results.length + 1} of ${plan.steps.length}: ${step.summary}. Signal "pause" or "abort" stops before the next step.`);
  /**
   * Runs the step. A step that finds its server busy does nothing: asked again every 10 s for up to
   * busyWaitSeconds, then skipped, saying why. Undefined when the window closed or an abort came
   * while waiting (stoppedBy says which).
   */
  const runWhenQuiet = async (step: MaintenanceStep): Promise<StepResult | undefined> => {
    const giveUpAt = Date.now() + settings.busyWaitSeconds * 1000;
    for (;;) {
      let attempt: StepAttempt;
      try {
        attempt = await run(step);
      } catch (err) {
        return { id: step.id, kind: step.kind, summary: step.summary, outcome: 'failed', reason: causeOf(err) };
      }
      if (!('busy' in attempt)) return attempt;
      if (Date.now() >= giveUpAt) return { id: step.id, kind: step.kind, summary: step.summary, outcome: 'skipped', reason: `the server stayed busy for ${settings.busyWaitSeconds} s: ${attempt.busy}` };
      show('waiting: server busy', `Waiting before "${step.summary}": ${attempt.busy}. Asking again in 10 s (gives up after ${settings.busyWaitSeconds} s).`);
      await condition(() => controls.abortedBy !== undefined, '10 seconds');
      stoppedBy = await mayStart();
      if (stoppedBy) return undefined;
      showApplying(step);
    }
  };

  // 3. One step at a time, inside the window.
  let destructiveFailed: string | undefined;
  /**
   * backupBeforeDrop: once, before the first drop, platformBackup of exactly the partitions to
   * drop (a partial backup: never "latest", no retention slot). Without the backup nothing is
   * dropped.
   */
  const backUpBeforeDrops = async () => {
    const partitions: Record<string, string[]> = {};
    for (const s of plan.steps) if (s.kind === 'drop') (partitions[`${s.database}.${s.table}`] ??= []).push(s.partitionId);
    const described = Object.entries(partitions).map(([table, ids]) => `${table} partition(s) ${ids.join(', ')}`).join('; ');
    show('applying', `Backing up ${described} with platformBackup before dropping them (backupBeforeDrop).`);
    try {
      const backup = await executeChild(platformBackup, {
        workflowId: `${workflowId}-backup-before-drop`,
        args: [{ components: ['clickhouse'], clickhouseTables: Object.keys(partitions), clickhousePartitions: partitions, retention: false }],
      });
      backupId = backup.backupId;
      backupPartitions = partitions;
    } catch (err) {
      backupFailed = causeOf(err);
    }
  };
  while (pending.length) {
    const step = pending[0]!;
    const skip = (reason: string) => {
      results.push({ id: step.id, kind: step.kind, summary: step.summary, outcome: 'skipped', reason });
      pending.shift();
    };
    if (step.destructive && !settings.preApproved.includes(step.destructive)) {
      if (!approval) {
        show('waiting for approval', `Waiting for approval of ${needsPerson.length} destructive step(s), plan ${plan.hash}.`);
        approval = await approvalWait!;
      }
      if (approval.outcome !== 'approved') {
        skip(`not approved: ${approval.outcome}${approval.by ? ` by ${approval.by}` : ''}${approval.reason ? ` (${approval.reason})` : ''}`);
        continue;
      }
    }
    if (step.kind === 'drop' && settings.backupBeforeDrop) {
      if (backupId === undefined && backupFailed === undefined && windowOpen() && controls.abortedBy === undefined) await backUpBeforeDrops();
      if (backupFailed !== undefined) {
        skip(`backupBeforeDrop: the backup failed (${backupFailed}): not dropped`);
        continue;
      }
    }
    if (step.destructive && destructiveFailed) {
      skip(`an earlier destructive step failed (${destructiveFailed}): no new destructive step starts`);
      continue;
    }
    stoppedBy = await mayStart();
    if (stoppedBy) break;
    status.step = step.summary;
    status.progress = undefined;
    showApplying(step);
    const result = await runWhenQuiet(step);
    if (!result) break;
    results.push(result);
    pending.shift();
    status.done = results.length;
    status.left = pending.map((s) => s.summary);
    status.step = undefined;
    if (result.outcome === 'failed' && step.destructive) destructiveFailed = step.summary;
  }
  if (approvalWait && !approval && stoppedBy) {
    // The run stopped before any step needed the answer: the report says the wait ended unanswered.
    approval = { required: true, outcome: 'aborted', planHash: plan.hash, reason: `the run stopped first: ${stoppedBy}`, requestedAt: started.toISOString(), waitedMs: Date.now() - started.getTime(), remindersSent: 0, refusals: [...gate.refusals] };
  }
  const failed = results.some((r) => r.outcome === 'failed');
  const outcome = stoppedBy === 'aborted' ? 'aborted' : stoppedBy === 'window closed' ? 'window closed' : failed ? 'failed' : 'completed';
  return finish(outcome, approval);
}

function causeOf(err: unknown): string {
  const e = err as { cause?: { message?: string }; message?: string };
  return e.cause?.message ?? e.message ?? String(err);
}
