/**
 * A ballast worker for the kill tests (spawned by test/integration/workerKill.test.ts): the real
 * worker (workers/worker.ts: every workflow, every activity, the liveness heartbeats) plus one
 * barrier. Every attempt of every activity first writes
 * `attempt.<workflowId>.<activityId>.<attempt>.json` into BALLAST_TEST_BARRIER_DIR (which worker
 * runs it, and when); the first attempt then waits there, alive and heartbeating, for the test to
 * SIGKILL this process, and later attempts run. So every activity boundary of a run is a kill
 * point.
 *
 *   BALLAST_CONFIG=<file> BALLAST_TEST_BARRIER_DIR=<dir> BALLAST_TEST_WORKFLOW_BUNDLE=<file> \
 *     node --import tsx test/helpers/barrierWorker.ts
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { loadConfig } from '../../workers/config';
import { createWorker } from '../../workers/worker';

export interface BarrierRecord {
  pid: number;
  activityType: string;
  workflowId: string;
  activityId: string;
  attempt: number;
  /** Epoch ms on this machine (the test runs on the same one). */
  at: number;
}

const dir = process.env.BALLAST_TEST_BARRIER_DIR;
const codePath = process.env.BALLAST_TEST_WORKFLOW_BUNDLE;

const barrier: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const { attempt, activityType, activityId, workflowExecution } = ctx.info;
      const workflowId = workflowExecution?.workflowId ?? 'none';
      const record: BarrierRecord = { pid: process.pid, activityType, workflowId, activityId, attempt, at: Date.now() };
      writeFileSync(path.join(dir!, `attempt.${workflowId}.${activityId}.${attempt}.json`), JSON.stringify(record));
      // Held until the test kills this process: the attempt never ends on its own.
      if (attempt === 1) return new Promise(() => undefined);
      return next(input);
    },
  },
});

async function main(): Promise<void> {
  if (!dir || !codePath) throw new Error('set BALLAST_TEST_BARRIER_DIR and BALLAST_TEST_WORKFLOW_BUNDLE');
  const { worker } = await createWorker(loadConfig(), { workflowBundle: { codePath }, interceptors: { activity: [barrier] } });
  await worker.run();
}

main().catch((err) => {
  console.error('barrier worker failed:', err);
  process.exit(1);
});
