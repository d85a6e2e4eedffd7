/** Where a run's report is kept in the backup bucket: outside backups/, so retention never deletes it. */
export function reportKey(folder: 'restores' | 'drills' | 'kafka-rolls' | 'demo-resets' | 'maintenance', started: Date, workflowId: string): string {
  return `reports/${folder}/${started.toISOString().replace(/[:.]/g, '-')}-${safe(workflowId)}.json`;
}

/**
 * Where a restore run's plan is kept: the workflow holds only this key and the plan's hashes. One
 * per run (a drill plans, then its restore plans again), outside backups/ like the reports.
 */
export function restorePlanKey(workflowId: string, runId: string): string {
  return `reports/plans/${safe(workflowId)}/${safe(runId)}.json`;
}

/** Where the checks of one verification are kept when they are too many to return. */
export function verifyChecksKey(workflowId: string, runId: string, task: number): string {
  return `reports/plans/${safe(workflowId)}/${safe(runId)}-verify-${task}.json`;
}

function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9._=-]/g, '_');
}
