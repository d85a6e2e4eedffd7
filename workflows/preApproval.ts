/**
 * When a restore may skip its approval gate. Only two rules allow it:
 * - a drDrill run passes its own approval to the restore it starts, into scratch targets only;
 * - a signed pre-approval names this run's workflow id, backup id, components and targets.
 * Anything else that carries a pre-approval is refused at start, naming the rule.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { z } from 'zod';
import { Failure } from '../contracts/failures';

/** A pre-approval lasts for an incident, not for ever. */
export const PRE_APPROVAL_MAX_HOURS = 24;

export const signedPreApprovalSchema = z.strictObject({
  reason: z.string().trim().min(1).regex(/^[^\r\n]*$/, 'must be one line: it is part of the signed text'),
  expiresAt: z.iso.datetime({ offset: true }),
  signature: z.string().min(1),
});

export function preApprovalRefused(rule: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`restore refused at start, nothing was touched: ${rule}`, Failure.PreApprovalRefused);
}

/** Why a signed pre-approval's shape or dates cannot count for this request, or undefined. */
export function preApprovalProblem(preApproved: unknown, backupId: string, now: Date): string | undefined {
  const parsed = signedPreApprovalSchema.safeParse(preApproved);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${['input', 'preApproved', ...i.path.map(String)].join('.')}: ${i.message}`).join('; ');
    return `a restore runs pre-approved only with a signed pre-approval {reason, expiresAt, signature} over its workflow id, backup id, components and targets (${fields})`;
  }
  if (backupId === 'latest') return 'a pre-approval is bound to one backup: input.backupId must name it, not "latest"';
  const expires = new Date(parsed.data.expiresAt).getTime();
  if (expires <= now.getTime()) return `the pre-approval expired at ${parsed.data.expiresAt}`;
  if (expires > now.getTime() + PRE_APPROVAL_MAX_HOURS * 3_600_000) return `a pre-approval may last at most ${PRE_APPROVAL_MAX_HOURS} h; this one runs to ${parsed.data.expiresAt}`;
  return undefined;
}
