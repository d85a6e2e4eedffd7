/**
 * Workflow interceptor for the workflow tests (bundled into their workflow code): an activity
 * scheduled with options that would let a dead worker stall the run (workflows/activityOptions.ts,
 * resumeProblem) fails the workflow at once with the reason, instead of being scheduled.
 */
import { ApplicationFailure, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { resumeProblem } from '../../workflows/activityOptions';

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      scheduleActivity(input, next) {
        const problem = resumeProblem(input.activityType, input.options);
        if (problem) throw ApplicationFailure.nonRetryable(problem, 'SlowToResume');
        return next(input);
      },
    },
  ],
});
