import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { workflowBundle as bundleWith } from '../../localStack/workflowEnv';

// In localStack/ so that scripts/recordHistories.ts shares it without importing test code.
export { createTestEnvironment } from '../../localStack/workflowEnv';

/**
 * The workflow bundle the workflow tests run, with the resume guard: any activity a workflow
 * schedules that a dead worker could hold for more than 30 s fails the test's workflow, naming it.
 */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWith([require.resolve('./resumeGuard')]);
}
