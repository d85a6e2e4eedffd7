/**
 * The runbooks ballast runs: each workflow type and the short name the CLI and the metrics know
 * it by (`ballast backup`, `ballast_backup_attempt_total`). A new runbook adds one line here.
 */
export const RUNBOOKS = [
  { workflowType: 'healthCheck', name: 'health' },
  { workflowType: 'platformBackup', name: 'backup' },
  { workflowType: 'restore', name: 'restore' },
  { workflowType: 'drDrill', name: 'drill' },
  { workflowType: 'kafkaRollingRestart', name: 'roll' },
  { workflowType: 'compaction', name: 'compaction' },
  { workflowType: 'demoReset', name: 'demo_reset' },
] as const;

export type RunbookName = (typeof RUNBOOKS)[number]['name'];

export function runbookOf(workflowType: string): RunbookName | undefined {
  return RUNBOOKS.find((r) => r.workflowType === workflowType)?.name;
}
