import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { workflowsPath } from '../workers/workflowsPath';
import { ballastSearchAttributes } from '../workflows/searchAttributes';
import { temporalBinaryPath } from './paths';

// Worker state changes at INFO would bury the output of the tests and of scripts/recordHistories.ts;
// warnings and errors still show.
Runtime.install({ logger: new DefaultLogger('WARN') });

/**
 * A Temporal test server from the stack's own `temporal` binary (never a download), on a free port
 * of its own so it does not collide with the stack's dev server.
 */
export async function createTestEnvironment(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalBinaryPath() },
      ip: '127.0.0.1',
      searchAttributes: [...ballastSearchAttributes],
    },
  });
}

const bundles = new Map<string, Promise<WorkflowBundleWithSourceMap>>();

/**
 * The workflow bundle, built once per process (and per set of workflow interceptor modules):
 * bundling takes seconds.
 */
export function workflowBundle(workflowInterceptorModules: string[] = []): Promise<WorkflowBundleWithSourceMap> {
  const key = workflowInterceptorModules.join('\n');
  let bundle = bundles.get(key);
  if (!bundle) {
    bundle = bundleWorkflowCode({ workflowsPath, workflowInterceptorModules, logger: quietLogger });
    bundles.set(key, bundle);
  }
  return bundle;
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };
