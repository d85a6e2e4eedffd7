/** Where a run's report is kept in the backup bucket: outside backups/, so retention never deletes it. */
export function reportKey(folder: 'restores' | 'drills' | 'kafka-rolls', started: Date, workflowId: string): string {
  return `reports/${folder}/${started.toISOString().replace(/[:.]/g, '-')}-${workflowId.replace(/[^A-Za-z0-9._=-]/g, '_')}.json`;
}
