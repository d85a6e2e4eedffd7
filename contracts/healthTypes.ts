/**
 * Types shared by workflows and activities. Workflow code imports this file, so it holds types
 * and pure constants only: no I/O, no node modules.
 */

export const SYSTEMS = ['postgres', 'clickhouse', 'kafka', 'objectStore'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export type Figure = number | string | boolean | number[] | string[];

export interface SystemHealth {
  system: SystemName;
  healthy: boolean;
  /** ISO time the check started, as the worker saw it. */
  checkedAt: string;
  durationMs: number;
  /** What was measured: versions, counts, names. Present even when unhealthy, as far as the check got. */
  figures: Record<string, Figure>;
  /** Why the system is unhealthy, in words a person can act on. */
  error?: string;
}

export interface HealthCheckInput {
  /** Systems to check; every configured system when absent. */
  systems?: SystemName[];
  /** Per-check timeout in seconds; the config's healthCheck.timeoutSeconds when absent. */
  timeoutSeconds?: number;
}

export interface HealthReport {
  healthy: boolean;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  systems: SystemHealth[];
  /** One line per system, for people reading the result in the Temporal UI. */
  summary: string[];
}

export interface CheckOptions {
  /**
   * A configured database that is missing is reported in the figures but does not make the
   * system unhealthy: a restore's target check, where the database is what will be restored.
   */
  allowMissingDatabases?: boolean;
}
