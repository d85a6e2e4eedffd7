import { ActivityFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CheckOptions, HealthReport, SystemHealth, SystemName } from '../contracts/healthTypes';
import { heartbeatingActivities } from './activityOptions';

// Each activity enforces the configured check timeout itself and reports what it found, a timeout
// included, as its result: a check fails only when its worker died or broke. That failure is
// retried once on another worker; an unhealthy system is never retried into looking healthy.
const { checkPostgres, checkClickHouse, checkKafka, checkObjectStore } = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '5 minutes', maximumAttempts: 2 }),
);

const checkers: Record<SystemName, (timeoutSeconds?: number, options?: CheckOptions) => Promise<SystemHealth>> = {
  postgres: checkPostgres,
  clickhouse: checkClickHouse,
  kafka: checkKafka,
  objectStore: checkObjectStore,
};

/**
 * Checks the systems at once; one system failing never hides the others. The healthCheck
 * workflow runs it for people; a restore runs it on its targets with `check` options a caller of
 * healthCheck cannot set.
 */
export async function checkSystems(
  systems: SystemName[],
  options: { timeoutSeconds?: number; check?: CheckOptions; onChecked?: (health: SystemHealth) => void } = {},
): Promise<HealthReport> {
  // Date in workflow code is the workflow task's time recorded in history: deterministic on replay.
  const started = new Date();
  const results = await Promise.all(
    systems.map(async (system) => {
      const health = await runSystemCheck(system, options.timeoutSeconds, options.check);
      options.onChecked?.(health);
      return health;
    }),
  );
  const finished = new Date();
  return {
    healthy: results.every((r) => r.healthy),
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    systems: results,
    summary: results.map(summaryLine),
  };
}

async function runSystemCheck(system: SystemName, timeoutSeconds?: number, options?: CheckOptions): Promise<SystemHealth> {
  const started = new Date();
  try {
    // Without options the activity is called exactly as before they existed, so recorded
    // histories replay unchanged.
    return await (options ? checkers[system](timeoutSeconds, options) : checkers[system](timeoutSeconds));
  } catch (err) {
    // The activity itself could not run to the end (worker lost, activity timeout): still a report.
    const cause = err instanceof ActivityFailure && err.cause ? `: ${err.cause.message}` : '';
    return {
      system,
      healthy: false,
      checkedAt: started.toISOString(),
      durationMs: Date.now() - started.getTime(),
      figures: {},
      error: `the ${system} check did not complete${cause || `: ${(err as Error).message}`}`,
    };
  }
}

function summaryLine(health: SystemHealth): string {
  const version = typeof health.figures.version === 'string' ? ` ${health.figures.version}` : '';
  return health.healthy
    ? `${health.system}: healthy${version} (${health.durationMs} ms)`
    : `${health.system}: UNHEALTHY: ${health.error ?? 'no detail'}`;
}
