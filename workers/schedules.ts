import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptionsStartWorkflowAction,
  type ScheduleSpec,
} from '@temporalio/client';
import type { platformBackup } from '../workflows/platformBackup';
import type { Config } from './config';

function backupSchedule(config: Config) {
  const spec: ScheduleSpec = { cronExpressions: [config.backup.schedule.cron] };
  const action: ScheduleOptionsStartWorkflowAction<typeof platformBackup> = {
    type: 'startWorkflow',
    workflowType: 'platformBackup',
    workflowId: config.backup.schedule.scheduleId,
    taskQueue: config.temporal.taskQueue,
    args: [{}],
    staticSummary: 'Nightly platform backup',
    staticDetails: 'Started by the nightly backup schedule; the result and manifest.json say what was backed up.',
  };
  const policies = {
    // A backup still running when the next is due is left to finish; the next one is skipped.
    overlap: ScheduleOverlapPolicy.SKIP,
    catchupWindow: `${config.backup.schedule.catchupWindowMinutes} minutes`,
  } as const;
  return { spec, action, policies };
}

/**
 * Creates the nightly backup schedule, or brings an existing one in line with the config, so
 * running it at every worker start is safe. With `backup.schedule.enabled: false` it is paused,
 * not deleted, so its history of runs stays visible.
 */
export async function ensureBackupSchedule(client: Client, config: Config): Promise<'created' | 'updated'> {
  const { spec, action, policies } = backupSchedule(config);
  const enabled = config.backup.schedule.enabled;
  const note = enabled ? 'managed by ballast (backup.schedule in ballast.yaml)' : 'paused: backup.schedule.enabled is false in ballast.yaml';
  try {
    await client.schedule.create({
      scheduleId: config.backup.schedule.scheduleId,
      spec,
      action,
      policies,
      state: { paused: !enabled, note },
    });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  const handle = client.schedule.getHandle(config.backup.schedule.scheduleId);
  await handle.update((previous) => ({ ...previous, spec, action, policies, state: { ...previous.state, paused: !enabled, note } }));
  return 'updated';
}
