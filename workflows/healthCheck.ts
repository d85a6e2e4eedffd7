import { defineQuery, setCurrentDetails, setHandler } from '@temporalio/workflow';
import { z } from 'zod';
import { parseInput } from './input';
import { checkSystems } from './systemChecks';
import { SYSTEMS, type HealthCheckInput, type HealthReport, type SystemName } from '../contracts/healthTypes';

export type { HealthCheckInput, HealthReport } from '../contracts/healthTypes';

export const inputSchema = z.strictObject({
  systems: z.array(z.enum(SYSTEMS)).min(1).optional(),
  timeoutSeconds: z.number().positive().max(600).optional(),
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

  const report = await checkSystems(systems, { timeoutSeconds: request.timeoutSeconds, onChecked: (health) => (states[health.system] = health.healthy ? 'healthy' : 'unhealthy') });
  phase = 'done';
  setCurrentDetails(report.healthy ? 'All checked systems are healthy.' : `Unhealthy: ${unhealthyNames(report)}.`);
  return report;
}

function unhealthyNames(report: HealthReport): string {
  return report.systems
    .filter((s) => !s.healthy)
    .map((s) => s.system)
    .join(', ');
}
