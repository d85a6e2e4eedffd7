import {
  ActivityFailure,
  defineQuery,
  proxyActivities,
  setCurrentDetails,
  setHandler,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import { parseInput } from './input';
import { SYSTEMS, type CheckOptions, type HealthCheckInput, type HealthReport, type SystemHealth, type SystemName } from '../contracts/healthTypes';

export type { HealthCheckInput, HealthReport } from '../contracts/healthTypes';

// Each activity enforces the configured check timeout itself and reports a timeout as unhealthy.
// This longer timeout only catches a worker that vanished mid-check. A health check reports the
// state it found; retrying would hide a flapping system, so there is one attempt.
const { checkPostgres, checkClickHouse, checkKafka, checkObjectStore } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 1 },
});

const checkers: Record<SystemName, (timeoutSeconds?: number, options?: CheckOptions) => Promise<SystemHealth>> = {
  postgres: checkPostgres,
  clickhouse: checkClickHouse,
  kafka: checkKafka,
  objectStore: checkObjectStore,
};

const inputSchema = z.strictObject({
  systems: z.array(z.enum(SYSTEMS)).min(1).optional(),
  timeoutSeconds: z.number().positive().max(600).optional(),
  /** Servers only: a configured database that is missing does not count as unhealthy (restore targets). */
  allowMissingDatabases: z.boolean().optional(),
});

export type CheckState = 'pending' | 'healthy' | 'unhealthy';

export interface HealthCheckStatus {
  phase: 'checking' | 'done';
  startedAt: string;
  elapsedMs: number;
  systems: Partial<Record<SystemName, CheckState>>;
}

export const healthCheckStatusQuery = defineQuery<HealthCheckStatus>('status');

/**
 * Runbook: "is the platform healthy?". Checks every system at once; one system failing never
 * hides the others. Later workflows run it as their pre-flight and post-flight check.
 */
export async function healthCheck(input: HealthCheckInput = {}): Promise<HealthReport> {
  const request = parseInput('healthCheck', inputSchema, input);
  const systems = [...new Set(request.systems ?? SYSTEMS)];
  // Date in workflow code is the workflow task's time recorded in history: deterministic on replay.
  const started = new Date();
  const states: Partial<Record<SystemName, CheckState>> = Object.fromEntries(systems.map((s) => [s, 'pending']));
  let phase: HealthCheckStatus['phase'] = 'checking';

  setHandler(healthCheckStatusQuery, () => ({
    phase,
    startedAt: started.toISOString(),
    elapsedMs: Date.now() - started.getTime(),
    systems: { ...states },
  }));
  setCurrentDetails(`Checking ${systems.join(', ')}. Nothing to approve: the report is the result.`);

  const results = await Promise.all(
    systems.map(async (system) => {
      const health = await runSystemCheck(system, request.timeoutSeconds, request.allowMissingDatabases ? { allowMissingDatabases: true } : undefined);
      states[system] = health.healthy ? 'healthy' : 'unhealthy';
      return health;
    }),
  );

  phase = 'done';
  const finished = new Date();
  const report: HealthReport = {
    healthy: results.every((r) => r.healthy),
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    systems: results,
    summary: results.map(summaryLine),
  };
  setCurrentDetails(report.healthy ? 'All checked systems are healthy.' : `Unhealthy: ${unhealthyNames(report)}.`);
  return report;
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

function unhealthyNames(report: HealthReport): string {
  return report.systems
    .filter((s) => !s.healthy)
    .map((s) => s.system)
    .join(', ');
}
