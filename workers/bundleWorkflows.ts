/**
 * Bundles the workflow code into one file. The worker runs this in a short-lived child process:
 * webpack needs a few hundred MB while it works, and a worker that bundled in its own process
 * would keep that heap for its whole life.
 *
 *   node --import tsx workers/bundleWorkflows.ts <output file>
 */
import { writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { runMetricsInterceptorPath, workflowsPath } from './workflowsPath';

async function main(outFile: string): Promise<void> {
  const noop = () => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules: [runMetricsInterceptorPath],
    logger: { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop },
  });
  writeFileSync(outFile, code);
}

const outFile = process.argv[2];
if (!outFile) {
  console.error('usage: bundleWorkflows.ts <output file>');
  process.exit(2);
}
main(outFile).catch((err) => {
  console.error('bundling the workflows failed:', err);
  process.exit(1);
});
