import { condition, defineSignal, defineUpdate, setHandler } from '@temporalio/workflow';
import type { ApprovalAnswer, ApprovalRecord } from '../contracts/restoreTypes';

export const approveSignal = defineSignal<[ApprovalAnswer]>('approve');
export const rejectSignal = defineSignal<[ApprovalAnswer]>('reject');
/** Like the signal, but the caller hears at once whether the approval was accepted, and why not. */
export const approveUpdate = defineUpdate<string, [ApprovalAnswer]>('approve');

export interface ApprovalPolicy {
  approvers: string[];
  fourEyes: boolean;
  reminderAfterMinutes: number;
  timeoutMinutes: number;
}

export interface GateRequest {
  /** What is waiting, for the UI and the reminder: "restore of backup X into shop". */
  what: string;
  requestedBy?: string;
  policy: ApprovalPolicy;
  preApproved?: ApprovalAnswer;
  /** Shows the person what is waiting and how to move it on. */
  show: (details: string) => void;
  remind: (text: string) => Promise<void>;
}

/**
 * Why an answer may not approve, or undefined when it may. Pure: the update validator, the signal
 * handler and the tests share it.
 */
export function approvalRefusal(answer: ApprovalAnswer | undefined, policy: ApprovalPolicy, requestedBy: string | undefined): string | undefined {
  const by = typeof answer?.by === 'string' ? answer.by.trim() : '';
  if (!by) return 'an approval must say who approves ("by")';
  if (typeof answer?.reason !== 'string' || !answer.reason.trim()) return 'an approval must say why ("reason")';
  if (policy.approvers.length > 0 && !policy.approvers.includes(by)) {
    return `${by} is not an approver (restore.approval.approvers: ${policy.approvers.join(', ')})`;
  }
  if (policy.fourEyes && requestedBy && by === requestedBy) {
    return `${by} requested this run and cannot approve it too (four-eyes is on)`;
  }
  return undefined;
}

/**
 * The approval gate: waits for an approve or reject (signal or update), reminds once, and fails
 * closed at the timeout. Answers are accepted only while it waits. Returns what happened; the
 * caller goes on only when the outcome is approved or pre-approved.
 */
export function createApprovalGate() {
  let waiting: GateRequest | undefined;
  let answer: { outcome: 'approved' | 'rejected'; by: string; reason: string; via: 'signal' | 'update'; at: Date } | undefined;
  const ignored: string[] = [];

  const accept = (outcome: 'approved' | 'rejected', a: ApprovalAnswer, via: 'signal' | 'update') => {
    answer = { outcome, by: a.by.trim(), reason: a.reason.trim(), via, at: new Date() };
  };

  setHandler(
    approveUpdate,
    (a) => {
      accept('approved', a, 'update');
      return `approved by ${a.by.trim()}`;
    },
    {
      validator: (a) => {
        if (!waiting || answer) throw new Error('nothing is waiting for approval in this run');
        const refusal = approvalRefusal(a, waiting.policy, waiting.requestedBy);
        if (refusal) throw new Error(refusal);
      },
    },
  );
  // Signals cannot be refused to the sender: a refused one is recorded and the gate keeps waiting.
  setHandler(approveSignal, (a) => {
    if (!waiting || answer) return void ignored.push(`approve from ${String(a?.by)}: nothing was waiting`);
    const refusal = approvalRefusal(a, waiting.policy, waiting.requestedBy);
    if (refusal) return void ignored.push(`approve from ${String(a?.by)}: ${refusal}`);
    accept('approved', a, 'signal');
  });
  setHandler(rejectSignal, (a) => {
    if (!waiting || answer) return void ignored.push(`reject from ${String(a?.by)}: nothing was waiting`);
    const by = typeof a?.by === 'string' ? a.by.trim() : '';
    if (!by) return void ignored.push('reject without "by"');
    // Anyone named may stop a destructive run; only approvers may let it go ahead.
    accept('rejected', { by, reason: typeof a.reason === 'string' && a.reason.trim() ? a.reason : '(no reason given)' }, 'signal');
  });

  return {
    ignored,
    get waiting() {
      return waiting !== undefined && answer === undefined;
    },
    async wait(request: GateRequest): Promise<ApprovalRecord> {
      const requestedAt = new Date();
      if (request.preApproved) {
        return { required: false, outcome: 'pre-approved', by: request.preApproved.by, reason: request.preApproved.reason, via: 'input', requestedAt: requestedAt.toISOString(), waitedMs: 0, remindersSent: 0 };
      }
      waiting = request;
      const who = request.policy.approvers.length ? ` (approvers: ${request.policy.approvers.join(', ')})` : '';
      request.show(
        `WAITING FOR APPROVAL of ${request.what}${who}. Send signal "approve" or "reject" with {"by": "<name>", "reason": "<why>"} ` +
          `(or update "approve"). Fails closed, touching nothing, after ${request.policy.timeoutMinutes} min.`,
      );
      let remindersSent = 0;
      const reminderMs = Math.min(request.policy.reminderAfterMinutes, request.policy.timeoutMinutes) * 60_000;
      const totalMs = request.policy.timeoutMinutes * 60_000;
      if (!(await condition(() => answer !== undefined, reminderMs)) && reminderMs < totalMs) {
        await request.remind(
          `${request.what} has waited ${request.policy.reminderAfterMinutes} min for approval; it fails closed in ${request.policy.timeoutMinutes - request.policy.reminderAfterMinutes} min.`,
        );
        remindersSent++;
        await condition(() => answer !== undefined, totalMs - reminderMs);
      }
      const waitedMs = Date.now() - requestedAt.getTime();
      waiting = undefined;
      if (!answer) {
        return { required: true, outcome: 'timed out', requestedAt: requestedAt.toISOString(), waitedMs, remindersSent };
      }
      return {
        required: true,
        outcome: answer.outcome,
        by: answer.by,
        reason: answer.reason,
        via: answer.via,
        requestedAt: requestedAt.toISOString(),
        answeredAt: answer.at.toISOString(),
        waitedMs,
        remindersSent,
      };
    },
  };
}
