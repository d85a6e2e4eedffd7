/**
 * Workflow interceptor for the large-restore test (bundled into its worker's workflow code): every
 * activity gets a heartbeat timeout of SHRUNK_HEARTBEAT_TIMEOUT instead of the usual 15 s. The
 * worker's liveness beats follow the shorter timeout (activities/common/heartbeat.ts), so only a
 * step that keeps the event loop from them for that long, say a synchronous pass over a large
 * manifest, times out: the test looks for such timeouts in the history.
 */
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';

export const SHRUNK_HEARTBEAT_TIMEOUT = '3 seconds';

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      scheduleActivity(input, next) {
        return next({ ...input, options: { ...input.options, heartbeatTimeout: SHRUNK_HEARTBEAT_TIMEOUT } });
      },
    },
  ],
});
