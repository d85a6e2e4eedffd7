import { CancelledFailure, type Context } from '@temporalio/activity';

/** What a cancelled activity throws: the SDK's reason when it is an error, else a CancelledFailure. */
export function cancellationReason(ctx: Context): unknown {
  const reason: unknown = ctx.cancellationSignal.reason;
  return reason instanceof Error ? reason : new CancelledFailure(typeof reason === 'string' ? reason : 'activity cancelled');
}
