import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptionsStartWorkflowAction,
  type ScheduleSpec,
  type Workflow,
} from '@temporalio/client';
import type { demoReset } from '../workflows/demoReset';
import { windowCron } from '../contracts/maintenanceWindow';
import type { compaction } from '../workflows/compaction';
import type { drDrill } from '../workflows/drDrill';
import type { platformBackup } from '../workflows/platformBackup';
import type { Config } from './config';

interface ScheduleSettings {
  enabled: boolean;
  scheduleId: string;
  cron: string;
  catchupWindowMinutes: number;
}

/**
 * Creates a schedule, or brings an existing one in line with the config, so running it at every
 * worker start is safe. A disabled one is paused, not deleted, so its history of runs stays visible.
 */
async function ensureSchedule<W extends Workflow>(
  client: Client,
  settings: ScheduleSettings,
  configKey: string,
  action: ScheduleOptionsStartWorkflowAction<W>,
): Promise<'created' | 'updated'> {
  const spec: ScheduleSpec = { cronExpressions: [settings.cron] };
  const policies = {
    // A run still going when the next is due is left to finish; the next one is skipped.
    overlap: ScheduleOverlapPolicy.SKIP,
    catchupWindow: `${settings.catchupWindowMinutes} minutes`,
  } as const;
  const note = settings.enabled ? `managed by ballast (${configKey} in ballast.yaml)` : `paused: ${configKey}.enabled is false in ballast.yaml`;
  try {
    await client.schedule.create({ scheduleId: settings.scheduleId, spec, action, policies, state: { paused: !settings.enabled, note } });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  const handle = client.schedule.getHandle(settings.scheduleId);
  await handle.update((previous) => ({ ...previous, spec, action, policies, state: { ...previous.state, paused: !settings.enabled, note } }));
  return 'updated';
}

/** The nightly platformBackup schedule (backup.schedule). */
export function ensureBackupSchedule(client: Client, config: Config): Promise<'created' | 'updated'> {
  return ensureSchedule<typeof platformBackup>(client, config.backup.schedule, 'backup.schedule', {
    type: 'startWorkflow',
    workflowType: 'platformBackup',
    workflowId: config.backup.schedule.scheduleId,
    taskQueue: config.temporal.taskQueue,
    args: [{}],
    staticSummary: 'Nightly platform backup',
    staticDetails: 'Started by the nightly backup schedule; the result and manifest.json say what was backed up.',
  });
}

/**
 * The monthly drDrill schedule (drill.schedule). It passes no approval: the drill asks the
 * schedule whether it started the run, and drill.schedulePreApproved decides whether that suffices.
 */
export function ensureDrillSchedule(client: Client, config: Config): Promise<'created' | 'updated'> {
  return ensureSchedule<typeof drDrill>(client, config.drill.schedule, 'drill.schedule', {
    type: 'startWorkflow',
    workflowType: 'drDrill',
    workflowId: config.drill.schedule.scheduleId,
    taskQueue: config.temporal.taskQueue,
    args: [{}],
    staticSummary: 'Monthly DR drill',
    staticDetails: 'Restores the latest backup into scratch targets, verifies it, reports RTO/RPO and tears the scratch targets down.',
  });
}

/**
 * The optional demoReset schedule (demoReset.schedule), e.g. a nightly reset of a public demo.
 * Its runs are forced (nobody is there to type the confirmation); the guard still refuses
 * anything but a marked demo. Without the setting there is no schedule.
 */
export async function ensureDemoResetSchedule(client: Client, config: Config): Promise<'created' | 'updated' | 'none'> {
  const schedule = config.demoReset.schedule;
  if (!schedule) return 'none';
  return ensureSchedule<typeof demoReset>(client, schedule, 'demoReset.schedule', {
    type: 'startWorkflow',
    workflowType: 'demoReset',
    workflowId: schedule.scheduleId,
    taskQueue: config.temporal.taskQueue,
    args: [{ force: true }],
    staticSummary: 'Scheduled demo reset',
    staticDetails: 'Returns the demo to empty (or to demoReset.goldenBackupId); forced, but refused unless the config is demo and every system carries the demo marker.',
  });
}

/**
 * The compaction schedule (maintenance.schedule): starts a run as the maintenance window opens. A
 * missed start may still run while the window is open. Disabled and never created: not created.
 */
export async function ensureMaintenanceSchedule(client: Client, config: Config): Promise<'created' | 'updated' | 'not created (disabled)'> {
  const { window, schedule } = config.maintenance;
  if (!schedule.enabled) {
    const exists = await client.schedule
      .getHandle(schedule.scheduleId)
      .describe()
      .then(
        () => true,
        () => false,
      );
    if (!exists) return 'not created (disabled)';
  }
  const settings = { enabled: schedule.enabled, scheduleId: schedule.scheduleId, cron: windowCron(window), catchupWindowMinutes: window.durationMinutes };
  return ensureSchedule<typeof compaction>(client, settings, 'maintenance.schedule', {
    type: 'startWorkflow',
    workflowType: 'compaction',
    workflowId: schedule.scheduleId,
    taskQueue: config.temporal.taskQueue,
    args: [{}],
    staticSummary: 'Nightly maintenance (compaction)',
    staticDetails: 'Started as the maintenance window opens: merges, vacuums, and the retention steps config allows; destructive steps wait for approval unless pre-approved.',
  });
}
