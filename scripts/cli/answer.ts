/**
 * `ballast approve|reject RUN` answers a run's approval gate: shows the plan it waits on (its
 * "approval" query), asks for confirmation, signs the exact text the gate checks, and sends the
 * "approve" or "reject" update, so a refusal comes back at once. `pause|resume|abort RUN` signal a
 * run whose runbook takes them.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { approvalText, type ApprovalAnswer, type ApprovalWaiting, type Decision } from '../../contracts/approvalTypes';
import type { OptionSpecs, ParsedValues } from './args';
import type { Context } from './context';
import { CliError, Exit, usageError, type ExitCode } from './errors';
import { chooseKey, operatorIdentity, operatorKeys, signApprovalText } from './operator';
import { formatDuration, status } from './output';
import { RUNBOOK_COMMANDS, runbookOfType, type Control } from './runbooks';

export const ANSWER_OPTIONS = {
  reason: { type: 'string' },
  /** A typed confirmation (demoReset) also types the environment's name. */
  environment: { type: 'string' },
  key: { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
  by: { type: 'string' },
} as const satisfies OptionSpecs;

export const CONTROL_OPTIONS = { reason: { type: 'string' } } as const satisfies OptionSpecs;

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

export function planText(workflowId: string, a: ApprovalWaiting, now: Date): string {
  return [
    `${workflowId} waits for approval of ${a.what}`,
    `  started by ${a.requester}; waiting ${formatDuration(now.getTime() - new Date(a.since).getTime())} (fails closed after ${a.timeoutMinutes} min)`,
    `  plan ${a.plan.hash}:`,
    ...(a.plan.actions.length ? a.plan.actions.map((x) => `    - ${x}`) : ['    (no destructive action)']),
    ...(a.plan.warnings ?? []).map((w) => `  WARNING: ${w}`),
  ].join('\n');
}

export async function answer(ctx: Context, decision: Decision, workflowId: string | undefined, values: ParsedValues): Promise<ExitCode> {
  const run = await ctx.run(workflowId ?? '');
  if (run.status !== 'RUNNING') throw usageError(`run ${run.handle.workflowId} is not running (${run.status}): nothing to ${decision}`);
  const waiting = await run.handle.query<ApprovalWaiting | null>('approval').catch(() => null);
  if (!waiting) throw usageError(`run ${run.handle.workflowId} (${run.type}) is not waiting for an approval`);
  const interactive = process.stdin.isTTY === true;
  ctx.out.log(planText(run.handle.workflowId, waiting, new Date()));
  let reason = typeof values.reason === 'string' ? values.reason.trim() : '';
  if (!reason && interactive && values.yes !== true) reason = await ask(`Why do you ${decision} (one line, signed with your answer)? `);
  if (!reason) throw usageError('--reason: a decision must say why');
  if (/[\r\n]/.test(reason)) throw usageError('--reason: one line only (it is part of the signed text)');
  // A typed confirmation approves only with the environment's name typed by the person: the
  // guard against resetting the wrong platform. --yes does not type it.
  const confirming = decision === 'approve' && waiting.typedConfirmation;
  let environment = typeof values.environment === 'string' ? values.environment.trim() : '';
  if (confirming && !environment) {
    if (!interactive) throw usageError("--environment: this run waits for a typed confirmation; type the environment's name with --environment NAME");
    environment = await ask("Type the environment's name to confirm: ");
  }
  if (values.yes !== true) {
    if (!interactive) throw usageError(`--yes: no terminal to confirm on; pass --yes to ${decision} plan ${waiting.plan.hash}`);
    const typed = await ask(`Type "${decision}" to ${decision} plan ${waiting.plan.hash}: `);
    if (typed !== decision) throw new CliError(Exit.refused, `not confirmed (typed ${JSON.stringify(typed)}): nothing was sent`);
  }
  const signersFile = ctx.loaded.config.approvals.allowedSignersFile;
  const key = typeof values.key === 'string' ? values.key : undefined;
  let sent: ApprovalAnswer;
  let by: string;
  if (!waiting.unsignedAllowed || key || signersFile) {
    const chosen = chooseKey(await operatorKeys(key), signersFile ? readFileSync(signersFile, 'utf8') : undefined);
    const text = approvalText({ workflowId: waiting.workflowId, runId: waiting.runId, planHash: waiting.plan.hash, decision, reason });
    sent = { plan: waiting.plan.hash, reason, signature: await signApprovalText(chosen, text) };
    by = `the key ${chosen.source}`;
  } else {
    by = typeof values.by === 'string' ? values.by : await operatorIdentity(undefined, undefined);
    sent = { plan: waiting.plan.hash, reason, by };
  }
  let accepted: string;
  try {
    accepted = confirming
      ? await run.handle.executeUpdate<string, [ApprovalAnswer & { environment: string }]>('confirm', { args: [{ ...sent, environment }] })
      : await run.handle.executeUpdate<string, [ApprovalAnswer]>(decision, { args: [sent] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const why = (err.cause as Error | undefined)?.message ?? err.message;
      throw new CliError(Exit.refused, `${decision} REFUSED by run ${run.handle.workflowId}: ${why}`);
    }
    throw err;
  }
  ctx.out.result(
    { ...status(Exit.ok), command: decision, workflowId: run.handle.workflowId, runId: waiting.runId, planHash: waiting.plan.hash, decision, reason, signed: sent.signature !== undefined, message: accepted },
    `${decision === 'approve' ? 'approved' : 'rejected'} plan ${waiting.plan.hash} of ${run.handle.workflowId} (${accepted}; signed with ${by})`,
  );
  return Exit.ok;
}

export async function control(ctx: Context, signal: Control, workflowId: string | undefined, values: ParsedValues): Promise<ExitCode> {
  const run = await ctx.run(workflowId ?? '');
  const runbook = runbookOfType(run.type);
  if (!runbook?.controls?.includes(signal)) {
    const takers = RUNBOOK_COMMANDS.filter((c) => c.controls?.includes(signal)).map((c) => c.workflowType).join(', ');
    throw usageError(`${signal}: run ${run.handle.workflowId} is a ${run.type}, which does not take "${signal}" (runs that do: ${takers})`);
  }
  if (run.status !== 'RUNNING') throw usageError(`run ${run.handle.workflowId} is not running (${run.status})`);
  const by = await operatorIdentity(ctx.loaded.config.approvals.allowedSignersFile, undefined);
  const reason = typeof values.reason === 'string' ? values.reason : undefined;
  await run.handle.signal(signal, { by, ...(reason ? { reason } : {}) });
  ctx.out.result({ ...status(Exit.ok), command: signal, workflowId: run.handle.workflowId, runId: run.runId, by, reason: reason ?? null }, `sent ${signal} to ${run.handle.workflowId} as ${by}`);
  return Exit.ok;
}
