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

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The workflow bundle, built once per process: bundling takes seconds. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  return bundle;
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };
