import type { ActivityOptions } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';

/**
 * How long a step may go without a heartbeat before Temporal gives it to another worker. The
 * worker heartbeats for every running activity every 3 s (activities/common/heartbeat.ts, sent at
 * most every 5 s by the SDK), so only a dead or frozen worker misses it. A run whose worker is
 * SIGKILLed goes on within this timeout plus the first retry's wait, well inside 30 s, whatever
 * it was doing; a shorter one would count a long garbage collection as a death.
 */
export const HEARTBEAT_TIMEOUT: Duration = '15 seconds';
const FIRST_RETRY: Duration = '1 second';

/**
 * Options for activities of one kind. `startToCloseTimeout` bounds a step that is alive but never
 * finishes (a hung server); a dead worker is the heartbeat timeout's job, never this one's.
 */
export function heartbeatingActivities(options: {
  startToCloseTimeout: Duration;
  maximumAttempts: number;
  nonRetryableErrorTypes?: string[];
}): ActivityOptions {
  return {
    startToCloseTimeout: options.startToCloseTimeout,
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    retry: { maximumAttempts: options.maximumAttempts, initialInterval: FIRST_RETRY, nonRetryableErrorTypes: options.nonRetryableErrorTypes },
  };
}

/** What a person waits at most, after a worker dies, before a step goes on elsewhere. */
export const RESUME_WITHIN_MS = 30_000;

/**
 * Why an activity scheduled with these options could stall a run for longer than RESUME_WITHIN_MS
 * after its worker dies; undefined when it cannot. A step must heartbeat with a timeout well
 * inside that, or be bounded by a start-to-close timeout inside it.
 */
export function resumeProblem(activityType: string, options: ActivityOptions): string | undefined {
  const heartbeat = options.heartbeatTimeout === undefined ? undefined : msToNumber(options.heartbeatTimeout);
  const startToClose = options.startToCloseTimeout === undefined ? undefined : msToNumber(options.startToCloseTimeout);
  const firstRetry = options.retry?.initialInterval === undefined ? 1_000 : msToNumber(options.retry.initialInterval);
  const bound = Math.min(heartbeat ?? Infinity, startToClose ?? Infinity);
  if (bound + firstRetry <= RESUME_WITHIN_MS) return undefined;
  return (
    `activity ${activityType}: a dead worker would hold it for ${bound === Infinity ? 'ever' : `${bound / 1000} s`} ` +
    `(heartbeat timeout ${heartbeat === undefined ? 'none' : `${heartbeat / 1000} s`}, start-to-close ${startToClose === undefined ? 'none' : `${startToClose / 1000} s`}, ` +
    `first retry after ${firstRetry / 1000} s): it must resume within ${RESUME_WITHIN_MS / 1000} s`
  );
}
