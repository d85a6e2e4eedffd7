/**
 * Following a run: a live progress line from its `status` query, then the run's outcome as an
 * exit code. Stopping (Ctrl-C, --timeout) stops following only: the run goes on.
 */
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { ApprovalWaiting } from '../../contracts/approvalTypes';
import { Failure } from '../../contracts/failures';
import { Exit, type ExitCode } from './errors';
import { formatBytes, formatDuration, type Output } from './output';

export type Outcome = 'succeeded' | 'failed' | 'waiting for approval' | 'timed out' | 'stopped';

export interface RunOutcome {
  outcome: Outcome;
  exitCode: ExitCode;
  result?: unknown;
  error?: { type?: string; message: string };
  approval?: ApprovalWaiting;
}

/** Failure types that mean a guard refused (exit 3), or that the input was wrong (exit 2). */
const REFUSED: readonly string[] = [Failure.TargetRefused, Failure.TargetBusy, Failure.PreApprovalRefused, Failure.Rejected, Failure.ApprovalRefused, Failure.BackupNotAuthentic, Failure.BackupIncomplete, Failure.BackupCorrupt, Failure.PlanNotApproved, Failure.UnexpectedSchema, Failure.TargetConflict];
const INVALID: readonly string[] = [Failure.InvalidInput, Failure.BackupNotFound, Failure.InvalidBackup];

export function exitCodeOfFailure(type: string | undefined): ExitCode {
  if (type && INVALID.includes(type)) return Exit.usage;
  if (type && REFUSED.includes(type)) return Exit.refused;
  if (type === Failure.ApprovalTimedOut) return Exit.waiting;
  return Exit.failed;
}

/** The innermost failure type and message of a failed run (a child's failure is its cause's cause). */
export function failureOf(err: unknown): { type?: string; message: string } {
  let e = (err instanceof WorkflowFailedError ? err.cause : err) as { type?: unknown; message?: string; cause?: unknown } | undefined;
  let found: { type?: string; message: string } = { message: (err as Error)?.message ?? String(err) };
  while (e) {
    if (typeof e.type === 'string') return { type: e.type, message: e.message ?? found.message };
    if (e.message) found = { message: e.message };
    e = e.cause as typeof e;
  }
  return found;
}

/** A run that returned can still have failed at its job: an unhealthy system, a roll that did not complete. */
export function outcomeOfResult(workflowType: string, result: unknown): RunOutcome {
  const r = (result ?? {}) as { healthy?: boolean; outcome?: string; summary?: string[]; haltedReason?: string; abortedBy?: string };
  if (workflowType === 'healthCheck' && r.healthy === false) {
    return { outcome: 'failed', exitCode: Exit.failed, result, error: { message: `unhealthy: ${(r.summary ?? []).filter((l) => l.includes('UNHEALTHY')).join('; ')}` } };
  }
  if (workflowType === 'kafkaRollingRestart' && r.outcome && r.outcome !== 'completed') {
    return { outcome: 'failed', exitCode: Exit.failed, result, error: { message: `roll ${r.outcome}${r.abortedBy ? ` (${r.abortedBy})` : ''}${r.haltedReason ? `: ${r.haltedReason}` : ''}` } };
  }
  return { outcome: 'succeeded', exitCode: Exit.ok, result };
}

type Status = Record<string, unknown>;

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** One line from a status query, whatever the runbook: phase, step, counts, bytes, ETA, RTO clock. */
export function progressLine(command: string, status: Status | undefined, now: Date): string {
  if (!status) return `${command}: starting`;
  const parts: string[] = [String(status.phase ?? 'running')];
  const running = Array.isArray(status.running) ? (status.running as string[]) : Object.values((status.components ?? {}) as Record<string, { running?: string[] }>).flatMap((c) => c?.running ?? []);
  if (running.length) parts.push(running.slice(0, 3).join(', ') + (running.length > 3 ? ` +${running.length - 3}` : ''));
  if (num(status.broker) !== undefined) parts.push(`broker ${status.broker as number}`);
  if (Array.isArray(status.done) && Array.isArray(status.remaining)) parts.push(`brokers done ${(status.done as number[]).join(',') || '-'}, left ${(status.remaining as number[]).join(',') || '-'}`);
  const components = Object.values((status.components ?? {}) as Record<string, { tasks?: number; done?: number; bytes?: number }>);
  const tasks = num(status.tasks) ?? (components.length ? components.reduce((a, c) => a + (c?.tasks ?? 0), 0) : undefined);
  const done = num(status.tasksDone) ?? (components.length ? components.reduce((a, c) => a + (c?.done ?? 0), 0) : undefined);
  if (tasks) parts.push(`${done ?? 0}/${tasks} steps`);
  const bytesTotal = num(status.bytesTotal);
  const bytesDone = num(status.bytesDone) ?? (components.length ? components.reduce((a, c) => a + (c?.bytes ?? 0), 0) : undefined);
  if (bytesDone !== undefined && (bytesDone > 0 || bytesTotal)) parts.push(bytesTotal ? `${formatBytes(bytesDone)} of ${formatBytes(bytesTotal)}` : formatBytes(bytesDone));
  if (status.systems && typeof status.systems === 'object' && !Array.isArray(status.systems)) {
    parts.push(Object.entries(status.systems as Record<string, string>).map(([s, state]) => `${s} ${state}`).join(', '));
  }
  const rto = status.rto as { elapsedMinutes?: number; targetMinutes?: number; projectedFinishAt?: string } | undefined;
  if (rto?.projectedFinishAt) parts.push(`ETA ${formatDuration(new Date(rto.projectedFinishAt).getTime() - now.getTime())}`);
  if (rto && num(rto.elapsedMinutes) !== undefined) parts.push(`RTO clock ${rto.elapsedMinutes} min${rto.targetMinutes ? ` of ${rto.targetMinutes}` : ''}`);
  const elapsed = num(status.elapsedMs);
  if (elapsed !== undefined) parts.push(`${formatDuration(elapsed)} elapsed`);
  if (status.paused === true) parts.push('PAUSED');
  return `${command}: ${parts.join(' · ')}`;
}

export interface FollowOptions {
  command: string;
  workflowType: string;
  out: Output;
  client: Client;
  /** Keep following while the run waits for an approval, instead of returning exit 4. */
  throughApproval: boolean;
  timeoutMs?: number;
  pollMs?: number;
  /** Resolves when the operator stops following (Ctrl-C). */
  stopped: Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A query answered within a few seconds, else undefined: a query waits for a worker to answer,
 * and with none polling it would hold the loop (and Ctrl-C) for as long as the server lets it.
 */
function quickQuery<T>(handle: WorkflowHandle, name: string, stopped: Promise<unknown>): Promise<T | undefined> {
  return Promise.race([handle.query<T>(name).catch(() => undefined), sleep(QUERY_WAIT_MS).then(() => undefined), stopped.then(() => undefined)]);
}
const QUERY_WAIT_MS = 5000;

export async function follow(handle: WorkflowHandle, options: FollowOptions): Promise<RunOutcome> {
  const { out, workflowType, command } = options;
  const deadline = options.timeoutMs !== undefined ? Date.now() + options.timeoutMs : undefined;
  const ended = handle.result().then(
    (result): RunOutcome => outcomeOfResult(workflowType, result),
    (err): RunOutcome => {
      const error = failureOf(err);
      return { outcome: 'failed', exitCode: exitCodeOfFailure(error.type), error };
    },
  );
  let stop = false;
  const stopped = options.stopped.then((): RunOutcome => {
    stop = true;
    return { outcome: 'stopped', exitCode: Exit.waiting };
  });
  let announced = false;
  for (;;) {
    const tick = await Promise.race([ended, stopped, sleep(options.pollMs ?? 1000).then(() => undefined)]);
    if (tick) return tick;
    const status = await quickQuery<Status>(handle, 'status', stopped);
    if (stop) return stopped;
    let line = progressLine(command, status, new Date());
    if (workflowType === 'drDrill' && status?.phase === 'restoring') {
      // The drill's restore is its child: its status has the bytes and the RTO clock.
      const child = await quickQuery<Status>(options.client.workflow.getHandle(`${handle.workflowId}-restore`), 'status', stopped);
      if (child) line = `${line} | ${progressLine('restore', child, new Date())}`;
    }
    out.progress(line);
    if (status?.phase === 'awaiting approval') {
      const approval = await quickQuery<ApprovalWaiting | null>(handle, 'approval', stopped);
      if (approval && !options.throughApproval) return { outcome: 'waiting for approval', exitCode: Exit.waiting, approval };
      if (approval && !announced) {
        announced = true;
        out.log(`waiting for approval of plan ${approval.plan.hash}: ballast approve ${handle.workflowId} --reason "..."`);
      }
    }
    if (stop) return stopped;
    if (deadline !== undefined && Date.now() >= deadline) return { outcome: 'timed out', exitCode: Exit.waiting };
  }
}
