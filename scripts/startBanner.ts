/** Tells the person who ran `npm start` where the UI is and how to run the first workflow. */
import { loadConfig } from '../workers/config';
import { temporalBinaryPath } from '../localStack/paths';
import { stackPorts } from '../localStack/ports';

const { config } = loadConfig();
const ports = stackPorts(config);
const { taskQueue, namespace } = config.temporal;
console.log(`
ballast is starting on the local stack.

  Temporal Web UI:  http://${ports.temporal.host}:${ports.temporal.uiPort}/namespaces/${namespace}/workflows
  Start a health check from the UI: "Start Workflow", Workflow Type "healthCheck",
  Task Queue "${taskQueue}", Input {} (JSON). Or from a shell:

    ${temporalBinaryPath()} workflow execute --address ${config.temporal.address} \\
      --namespace ${namespace} --type healthCheck --task-queue ${taskQueue} --input '{}'

  Stop with Ctrl-C (the worker drains and exits); scripts/stack stop stops the platform.
`);
