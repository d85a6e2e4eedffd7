import { randomUUID } from 'node:crypto';
import { writeDerivedConfig } from '../../localStack/derivedConfig';
import type { LoadedConfig } from '../../workers/config';

// In localStack/ so that scripts/bench.ts shares it without importing test code.
export { spawnWorker, type WorkerProcess } from '../../localStack/workerProcess';

/**
 * A config of the test's own: its own task queue and schedule id, so it never takes a running
 * `npm start` worker's tasks or changes its schedule.
 */
export function writeTestConfig(changes: { backup?: Record<string, unknown>; restore?: Record<string, unknown>; approvals?: Record<string, unknown>; drill?: Record<string, unknown> } = {}): LoadedConfig {
  const id = randomUUID().slice(0, 8);
  return writeDerivedConfig(`test-${id}`, (raw) => {
    raw.temporal = { ...raw.temporal, taskQueue: `ballast-test-${id}` };
    raw.backup = { ...raw.backup, ...changes.backup, schedule: { ...raw.backup?.schedule, scheduleId: `ballast-test-schedule-${id}` } };
    raw.restore = { ...raw.restore, ...changes.restore };
    raw.approvals = { ...raw.approvals, ...changes.approvals };
    raw.drill = { ...raw.drill, ...changes.drill, schedule: { ...raw.drill?.schedule, enabled: false, scheduleId: `ballast-test-drill-${id}` } };
  });
}
