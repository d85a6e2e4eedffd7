/** `ballast <runbook> [flags] [--wait]`: starts the workflow, prints its id and link, optionally follows it. */
import { randomBytes } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { ApprovalWaiting } from '../../contracts/approvalTypes';
import type { OptionSpecs, ParsedValues } from './args';
import type { Context } from './context';
import { CliError, Exit, usageError, type ExitCode } from './errors';
import { follow, type RunOutcome } from './follow';
import { operatorIdentity } from './operator';
import { formatDuration, status } from './output';
import type { RunbookCommand } from './runbooks';

/** Flags every runbook command takes besides its own. */
export const START_OPTIONS = {
  wait: { type: 'boolean' },
  'wait-approval': { type: 'boolean' },
  timeout: { type: 'string' },
  id: { type: 'string' },
  key: { type: 'string' },
} as const satisfies OptionSpecs;

/** A workflow id that sorts by time and says what it is: backup-20261202T043000Z-1a2b3c. */
export function newWorkflowId(command: string, now: Date): string {
  return `${command}-${now.toISOString().slice(0, 19).replace(/[-:]/g, '')}Z-${randomBytes(3).toString('hex')}`;
}

export function timeoutMs(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(String(value));
  if (!m) throw usageError(`--timeout ${JSON.stringify(value)}: expected a duration such as 90s, 15m or 2h`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 's' | 'm' | 'h'];
}

export async function startRunbook(ctx: Context, runbook: RunbookCommand, values: ParsedValues, stopped: Promise<void>): Promise<ExitCode> {
  const input = runbook.input(values);
  const wait = values.wait === true || values['wait-approval'] === true;
  const timeout = timeoutMs(values.timeout);
  if (timeout !== undefined && !wait) throw usageError('--timeout: only with --wait');
  const workflowId = typeof values.id === 'string' ? values.id : newWorkflowId(runbook.command, new Date());
  const { config } = ctx.loaded;
  const identity = await operatorIdentity(config.approvals.allowedSignersFile, typeof values.key === 'string' ? values.key : undefined);
  const client = await ctx.client(identity);
  let handle;
  try {
    handle = await client.workflow.start(runbook.workflowType, { taskQueue: config.temporal.taskQueue, workflowId, args: [input] });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new CliError(Exit.refused, `a run with workflow id ${workflowId} is already running (--id): follow it with ballast status ${workflowId}`);
    throw err;
  }
  const runId = handle.firstExecutionRunId;
  const webUi = ctx.webUiLink(workflowId, runId);
  const started = { command: runbook.command, workflowType: runbook.workflowType, workflowId, runId, webUi: webUi ?? null, startedBy: identity };
  if (!wait) {
    ctx.out.result({ ...status(Exit.ok), ...started, outcome: 'started' }, `started ${runbook.command}: ${workflowId} (run ${runId})${webUi ? `\n${webUi}` : ''}`);
    return Exit.ok;
  }
  ctx.out.log(`started ${runbook.command}: ${workflowId} (run ${runId})${webUi ? ` ${webUi}` : ''}`);
  const ended = await follow(handle, { command: runbook.command, workflowType: runbook.workflowType, out: ctx.out, client, throughApproval: values['wait-approval'] === true, timeoutMs: timeout, stopped });
  ctx.out.result({ ...status(ended.exitCode), ...started, outcome: ended.outcome, result: ended.result ?? null, error: ended.error ?? null, approval: ended.approval ?? null }, outcomeText(runbook.command, workflowId, ended));
  return ended.exitCode;
}

export function outcomeText(command: string, workflowId: string, ended: RunOutcome): string {
  switch (ended.outcome) {
    case 'succeeded':
      return `${command} ${workflowId} succeeded${resultSummary(ended.result)}`;
    case 'failed':
      return `${command} ${workflowId} FAILED${ended.error?.type ? ` (${ended.error.type})` : ''}: ${ended.error?.message ?? 'see the Web UI'}`;
    case 'waiting for approval':
      return approvalText(workflowId, ended.approval!);
    case 'timed out':
      return `stopped following ${workflowId} at --timeout; the run goes on (ballast status ${workflowId})`;
    case 'stopped':
      return `stopped following ${workflowId}; the run goes on (ballast status ${workflowId})`;
  }
}

function approvalText(workflowId: string, a: ApprovalWaiting): string {
  return [
    `${workflowId} is WAITING FOR APPROVAL of ${a.what} (since ${a.since}, fails closed after ${a.timeoutMinutes} min)`,
    `plan ${a.plan.hash}:`,
    ...a.plan.actions.map((x) => `  - ${x}`),
    ...(a.plan.warnings ?? []).map((w) => `WARNING: ${w}`),
    `approve: ballast approve ${workflowId} --reason "..."${a.fourEyes ? ` (by someone other than ${a.requester})` : ''}`,
  ].join('\n');
}

/** The line a person wants from a result: the backup id, the RTO, the roll's outcome. */
function resultSummary(result: unknown): string {
  const r = (result ?? {}) as { backupId?: string; complete?: boolean; totals?: { bytes: number; pieces: number }; durationMs?: number; rto?: { measuredMinutes: number; targetMinutes: number; met: boolean }; report?: { rto?: { measuredMinutes: number; targetMinutes: number; met: boolean } }; healthy?: boolean; restarted?: unknown[] };
  const parts: string[] = [];
  if (r.backupId) parts.push(`backup ${r.backupId}${r.complete === false ? ' (PARTIAL)' : ''}`);
  if (r.totals) parts.push(`${r.totals.pieces} pieces, ${r.totals.bytes} bytes`);
  const rto = r.rto ?? r.report?.rto;
  if (rto) parts.push(`RTO ${rto.measuredMinutes} min (target ${rto.targetMinutes}, ${rto.met ? 'met' : 'BREACHED'})`);
  if (r.healthy === true) parts.push('all healthy');
  if (Array.isArray(r.restarted)) parts.push(`${r.restarted.length} broker(s) restarted`);
  if (typeof r.durationMs === 'number') parts.push(`in ${formatDuration(r.durationMs)}`);
  return parts.length ? `: ${parts.join(', ')}` : '';
}
