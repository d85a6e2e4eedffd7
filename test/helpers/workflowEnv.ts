import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { workflowBundle as bundleWith } from '../../localStack/workflowEnv';

// In localStack/ so that scripts/recordHistories.ts shares it without importing test code.
export { createTestEnvironment } from '../../localStack/workflowEnv';

/**
 * The workflow bundle the workflow tests run, with the resume guard: any activity a workflow
 * schedules that a dead worker could hold for more than 30 s fails the test's workflow, naming it.
 * `options.shrunkTimeouts` adds test/helpers/shrunkTimeouts.ts after it.
 */
export function workflowBundle(options: { shrunkTimeouts?: boolean } = {}): Promise<WorkflowBundleWithSourceMap> {
  const modules = [require.resolve('./resumeGuard')];
  if (options.shrunkTimeouts) modules.push(require.resolve('./shrunkTimeouts'));
  return bundleWith(modules);
}
