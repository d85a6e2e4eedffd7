import {
  ApplicationFailure,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  getCurrentDetails,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  APPROVAL_NAMESPACE,
  approvalText,
  type ApprovalAnswer,
  type ApprovalPlan,
  type ApprovalPolicy,
  type ApprovalRecord,
  type ApprovalWaiting,
  type Decision,
} from '../contracts/approvalTypes';
import { Failure } from '../contracts/failures';
import { heartbeatingActivities } from './activityOptions';

export const approveSignal = defineSignal<[ApprovalAnswer]>('approve');
export const rejectSignal = defineSignal<[ApprovalAnswer]>('reject');
/** Like the signals, but the caller hears at once whether the answer was accepted, and why not. */
export const approveUpdate = defineUpdate<string, [ApprovalAnswer]>('approve');
export const rejectUpdate = defineUpdate<string, [ApprovalAnswer]>('reject');
/** The plan waiting for an answer, or null: one query for every runbook that has a gate. */
export const approvalQuery = defineQuery<ApprovalWaiting | null>('approval');
/**
 * A typed confirmation (demoReset): an approval of the plan that also types the environment's
 * name. It is decided like an approval (signature, approvers, four-eyes), and only a wait that
 * asks for it (GateRequest.typedEnvironment) takes it; such a wait takes no plain approval.
 */
export interface ConfirmAnswer extends ApprovalAnswer {
  environment?: string;
}
export const confirmSignal = defineSignal<[ConfirmAnswer]>('confirm');
export const confirmUpdate = defineUpdate<string, [ConfirmAnswer]>('confirm');

const { verifyApprovalSignature } = proxyActivities<Activities>(heartbeatingActivities({ startToCloseTimeout: '1 minute', maximumAttempts: 3 }));

export interface GateRequest {
  /** What is waiting, for the UI and the reminder: "restore of backup X into shop". */
  what: string;
  plan: ApprovalPlan;
  /** Who started the run, as ballast recorded it (runOrigin): four-eyes keeps them from approving. */
  requester: string;
  policy: ApprovalPolicy;
  /** Set: the wait takes a typed confirmation ("confirm", naming this environment) instead of "approve". */
  typedEnvironment?: string;
  /** Ends the wait early (an abort): the record's outcome is then 'aborted', with this reason. */
  stopWhen?: () => string | undefined;
}

export interface GateOptions {
  /** Reminders and refusals go to people, not only to the UI. */
  notify: (kind: 'reminder' | 'refusal', title: string, text: string) => Promise<void>;
}

interface Decided {
  decision: Decision;
  by: string;
  reason: string;
  authentication: 'ssh-signature' | 'unsigned';
  keyFingerprint?: string;
  via: 'signal' | 'update';
  at: Date;
}

interface Wait {
  request: GateRequest;
  since: Date;
  decided?: Decided;
  refusals: string[];
}

const text = (v: unknown) => (typeof v === 'string' ? v.trim() : '');

/**
 * What is wrong with an answer before any signature is checked, or undefined. Pure and
 * deterministic: the update validator, the signal handler and the unit tests share it.
 */
export function answerProblem(answer: unknown, decision: Decision, request: GateRequest | undefined): string | undefined {
  if (!request) return 'nothing is waiting for approval in this run';
  if (!answer || typeof answer !== 'object') return 'an answer is an object: {"plan": ..., "reason": ..., "signature": ...}';
  const a = answer as Record<string, unknown>;
  if (decision === 'approve' && request.typedEnvironment) {
    return `this run waits for a typed confirmation: send "confirm" with {"environment": "<the environment's name>", "plan": "${request.plan.hash}", ...}`;
  }
  return answerFieldsProblem(a, decision, request);
}

/** What is wrong with a typed confirmation before any signature is checked, or undefined. */
export function confirmProblem(answer: unknown, request: GateRequest | undefined): string | undefined {
  if (!request) return 'nothing is waiting for a confirmation in this run';
  if (!request.typedEnvironment) return 'this run waits for "approve", not for a typed confirmation';
  if (!answer || typeof answer !== 'object') return 'a confirmation is an object: {"environment": ..., "plan": ..., "reason": ...}';
  const typed = (answer as Record<string, unknown>).environment;
  if (typed !== request.typedEnvironment) {
    return typed === undefined || typed === '' ? 'a confirmation must type the environment\'s name ("environment")' : `the typed environment ${JSON.stringify(typed)} is not this run's environment`;
  }
  return answerFieldsProblem(answer as Record<string, unknown>, 'approve', request);
}

function answerFieldsProblem(a: Record<string, unknown>, decision: Decision, request: GateRequest): string | undefined {
  if (!text(a.reason)) return `a ${decision} must say why ("reason")`;
  if (/[\r\n]/.test(String(a.reason))) return '"reason" must be one line: it is part of the signed text';
  if (a.plan !== request.plan.hash) {
    return a.plan ? `this answer is for plan ${String(a.plan)}, but the run waits on plan ${request.plan.hash}` : `an answer must name the plan it is for ("plan": "${request.plan.hash}")`;
  }
  if (text(a.signature)) return undefined;
  if (decision === 'approve' && !request.policy.unsignedAllowed) {
    return `an unsigned approval is refused: this config requires an SSH signature (ssh-keygen -Y sign -n ${APPROVAL_NAMESPACE}) from a key in approvals.allowedSignersFile`;
  }
  if (!text(a.by)) return `an unsigned ${decision} must say who answers ("by")`;
  return decision === 'approve' ? approverProblem(text(a.by), request) : undefined;
}

/** Why this person may not approve, or undefined. Anyone may reject: stopping is always safe. */
export function approverProblem(who: string, request: GateRequest): string | undefined {
  const { approvers, fourEyes } = request.policy;
  if (approvers.length > 0 && !approvers.includes(who)) return `${who} is not an approver (approvals.approvers: ${approvers.join(', ')})`;
  if (fourEyes && who === request.requester) return `${who} started this run and cannot approve it too (four-eyes)`;
  return undefined;
}

/**
 * The approval gate: waits for a signed approve or reject of one plan (signal or update), reminds
 * once, and fails closed at the timeout. Signatures are checked by an activity, outside the update
 * validator, which must stay deterministic. Every refused answer is kept, shown in the run's
 * details at once and notified; an update also returns its refusal to the caller.
 */
export function createApprovalGate(options: GateOptions) {
  let current: Wait | undefined;
  const refusals: string[] = [];

  async function refuse(wait: Wait | undefined, decision: Decision, via: 'signal' | 'update', answer: ApprovalAnswer | undefined, why: string): Promise<string> {
    const who = text(answer?.signature) ? 'signed' : text(answer?.by) ? `from ${text(answer?.by)}` : 'unnamed';
    const line = `${new Date().toISOString()} ${decision} (${via}, ${who}) REFUSED: ${why}`;
    refusals.push(line);
    wait?.refusals.push(line);
    const details = getCurrentDetails()
      .split('\n')
      .filter((l) => !l.startsWith('REFUSED '));
    setCurrentDetails([`REFUSED ${line}`, ...details].join('\n'));
    await options.notify('refusal', `${decision} refused${wait ? `: ${wait.request.what}` : ''}`, line);
    return why;
  }

  /** Decides one answer: undefined when it was accepted, else the refusal. A confirmation decides as an approval. */
  async function consider(decision: Decision, answer: ApprovalAnswer, via: 'signal' | 'update', confirmation = false): Promise<string | undefined> {
    const wait = current;
    const early = confirmation ? confirmProblem(answer, wait?.request) : answerProblem(answer, decision, wait?.request);
    if (early || !wait) return refuse(wait, decision, via, answer, early ?? 'nothing is waiting for approval in this run');
    if (wait.decided) return refuse(wait, decision, via, answer, `this wait was already answered (${wait.decided.decision} by ${wait.decided.by})`);
    const reason = text(answer.reason);
    let decided: Decided;
    if (text(answer.signature)) {
      const { workflowId, runId } = workflowInfo();
      const signed = approvalText({ workflowId, runId, planHash: wait.request.plan.hash, decision, reason });
      const check = await verifyApprovalSignature({ text: signed, signature: text(answer.signature) });
      if (current !== wait || wait.decided) return refuse(wait, decision, via, answer, 'the wait this answer was for ended while its signature was checked');
      if (!check.ok) return refuse(wait, decision, via, answer, `the signature does not approve this plan in this run: ${check.refusal}`);
      if (text(answer.by) && text(answer.by) !== check.principal) return refuse(wait, decision, via, answer, `signed by ${check.principal}, but "by" says ${text(answer.by)}`);
      const problem = decision === 'approve' ? approverProblem(check.principal, wait.request) : undefined;
      if (problem) return refuse(wait, decision, via, answer, problem);
      decided = { decision, by: check.principal, reason, authentication: 'ssh-signature', keyFingerprint: check.keyFingerprint, via, at: new Date() };
    } else {
      decided = { decision, by: text(answer.by), reason, authentication: 'unsigned', via, at: new Date() };
    }
    wait.decided = decided;
    return undefined;
  }

  for (const [update, decision] of [
    [approveUpdate, 'approve'],
    [rejectUpdate, 'reject'],
  ] as const) {
    setHandler(
      update,
      async (answer) => {
        const refusal = await consider(decision, answer, 'update');
        if (refusal) throw ApplicationFailure.nonRetryable(refusal, Failure.ApprovalRefused);
        return `${decision === 'approve' ? 'approved' : 'rejected'} by ${current?.decided?.by ?? 'you'}`;
      },
      {
        validator: (answer) => {
          const problem = answerProblem(answer, decision, current?.request);
          if (problem) throw new Error(problem);
          if (current?.decided) throw new Error(`this wait was already answered (${current.decided.decision} by ${current.decided.by})`);
        },
      },
    );
  }
  setHandler(
    confirmUpdate,
    async (answer) => {
      const refusal = await consider('approve', answer, 'update', true);
      if (refusal) throw ApplicationFailure.nonRetryable(refusal, Failure.ApprovalRefused);
      return `confirmed by ${current?.decided?.by ?? 'you'}`;
    },
    {
      validator: (answer) => {
        const problem = confirmProblem(answer, current?.request);
        if (problem) throw new Error(problem);
        if (current?.decided) throw new Error(`this wait was already answered (${current.decided.decision} by ${current.decided.by})`);
      },
    },
  );
  setHandler(confirmSignal, async (answer) => void (await consider('approve', answer, 'signal', true)));
  // A signal cannot answer its sender: a refused one is kept, shown and notified instead.
  setHandler(approveSignal, async (answer) => void (await consider('approve', answer, 'signal')));
  setHandler(rejectSignal, async (answer) => void (await consider('reject', answer, 'signal')));
  setHandler(approvalQuery, (): ApprovalWaiting | null => {
    if (!current || current.decided) return null;
    const { request, since } = current;
    const { workflowId, runId } = workflowInfo();
    const { unsignedAllowed, fourEyes, timeoutMinutes } = request.policy;
    return {
      what: request.what,
      plan: request.plan,
      workflowId,
      runId,
      requester: request.requester,
      since: since.toISOString(),
      unsignedAllowed,
      fourEyes,
      timeoutMinutes,
      typedConfirmation: request.typedEnvironment !== undefined,
    };
  });

  return {
    /** Every answer refused in this run, newest last. */
    refusals,
    /** The plan being waited on, for the status query. */
    get waitingOn(): { what: string; plan: ApprovalPlan } | undefined {
      return current && !current.decided ? { what: current.request.what, plan: current.request.plan } : undefined;
    },

    async wait(request: GateRequest): Promise<ApprovalRecord> {
      const requestedAt = new Date();
      const wait: Wait = { request, since: requestedAt, refusals: [] };
      current = wait;
      setCurrentDetails(waitingDetails(request));
      const settled = () => wait.decided !== undefined || request.stopWhen?.() !== undefined;
      const { reminderAfterMinutes, timeoutMinutes } = request.policy;
      const reminderMs = Math.min(reminderAfterMinutes, timeoutMinutes) * 60_000;
      const totalMs = timeoutMinutes * 60_000;
      let remindersSent = 0;
      if (!(await condition(settled, reminderMs)) && reminderMs < totalMs) {
        await options.notify('reminder', `approval needed: ${request.what}`, `${request.what} has waited ${reminderAfterMinutes} min for approval of plan ${request.plan.hash}; it fails closed in ${timeoutMinutes - reminderAfterMinutes} min.`);
        remindersSent++;
        await condition(settled, totalMs - reminderMs);
      }
      current = undefined;
      const base = { required: true, planHash: request.plan.hash, requester: request.requester, requestedAt: requestedAt.toISOString(), waitedMs: Date.now() - requestedAt.getTime(), remindersSent, refusals: wait.refusals };
      const d = wait.decided;
      if (d) {
        const outcome = d.decision === 'approve' ? 'approved' : 'rejected';
        return { ...base, outcome, by: d.by, reason: d.reason, authentication: d.authentication, keyFingerprint: d.keyFingerprint, via: d.via, answeredAt: d.at.toISOString() };
      }
      const stopped = request.stopWhen?.();
      return stopped ? { ...base, outcome: 'aborted', reason: stopped } : { ...base, outcome: 'timed out' };
    },
  };
}

/** The details a person sees while a gate waits: the plan, and exactly what to sign and send. */
function waitingDetails(request: GateRequest): string {
  const { workflowId, runId } = workflowInfo();
  const { plan, policy } = request;
  const shown = plan.actions.slice(0, 20).map((a) => `  - ${a}`);
  if (plan.actions.length > shown.length) shown.push(`  ... and ${plan.actions.length - shown.length} more (query "status")`);
  return [
    request.typedEnvironment ? `WAITING FOR CONFIRMATION of ${request.what}.` : `WAITING FOR APPROVAL of ${request.what}.`,
    `Plan ${plan.hash}:`,
    ...(shown.length ? shown : ['  (no destructive action)']),
    ...(plan.warnings ?? []).map((w) => `WARNING: ${w}`),
    `To approve, sign this text (your reason on its last line) with a key in the allowed-signers file, ssh-keygen -Y sign -f <key> -n ${APPROVAL_NAMESPACE} <file>:`,
    approvalText({ workflowId, runId, planHash: plan.hash, decision: 'approve', reason: '<one line>' }).trimEnd(),
    request.typedEnvironment
      ? `then send update "confirm" with {"environment": "<type the environment's name>", "plan": "${plan.hash}", "reason": "<the same line>", "signature": "<the .sig file>"}. "reject" works like an approval's (decision: reject).`
      : `then send update "approve" with {"plan": "${plan.hash}", "reason": "<the same line>", "signature": "<the .sig file>"}. "reject" works the same way (decision: reject).`,
    policy.unsignedAllowed
      ? `This config has no allowed-signers file: {${request.typedEnvironment ? '"environment": ..., ' : ''}"plan": ..., "by": "<name>", "reason": ...} also ${request.typedEnvironment ? 'confirms' : 'approves'}, and the report says "unsigned".`
      : '',
    `Started by ${request.requester}${policy.fourEyes ? ', who cannot approve it (four-eyes)' : ''}. Fails closed, touching nothing, after ${policy.timeoutMinutes} min.`,
  ]
    .filter(Boolean)
    .join('\n');
}
