import { ApplicationFailure, type Context } from '@temporalio/activity';
import { backupIdProblem } from '../../contracts/backupId';
import { Failure } from '../../contracts/failures';
import { cancellationReason } from '../common/cancellation';

export function checkBackupId(activity: string, backupId: unknown): void {
  const problem = backupIdProblem(backupId);
  if (problem) throw ApplicationFailure.nonRetryable(`${activity}: ${problem}`, Failure.InvalidInput);
}

export function throwIfCancelled(ctx: Context): void {
  if (ctx.cancellationSignal.aborted) throw cancellationReason(ctx);
}
