import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/**
 * An activity's non-retryable failure (bad input, an unusable backup) as the workflow's own
 * failure, so the UI and the caller see its message and type first instead of "activity task
 * failed". Anything else is returned unchanged.
 */
export function surfacedFailure(err: unknown): unknown {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.nonRetryable) {
    return ApplicationFailure.create({
      message: err.cause.message,
      type: err.cause.type ?? undefined,
      nonRetryable: true,
      details: err.cause.details ?? undefined,
      cause: err,
    });
  }
  return err;
}

/** Awaits `promise`, rethrowing its failure through surfacedFailure. */
export async function surfaceNonRetryable<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    throw surfacedFailure(err);
  }
}
