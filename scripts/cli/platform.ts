/**
 * `ballast status [RUN]` and `ballast backups [show ID]`: what an operator asks before and after
 * a run. The bucket is read with the worker's own helpers and secrets (the same config file).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { configuredComponents } from '../../activities/backup/completeness';
import { listBackupEntries, newestCompleteBackup, readBackupEntry, type BackupEntry } from '../../activities/backup/catalog';
import { createRestoreReportActivities, type DrillTrendRow } from '../../activities/restore/report';
import { backupIdProblem } from '../../contracts/backupId';
import type { ApprovalWaiting } from '../../contracts/approvalTypes';
import { runsWaitingForApproval } from '../../workers/approvalsWaiting';
import { RUNBOOK_COMMANDS } from './runbooks';
import { createConnections } from '../../workers/connections';
import { listBackupIds } from '../../activities/storage/backupObjects';
import type { Context } from './context';
import { Exit, usageError, type ExitCode } from './errors';
import { progressLine } from './follow';
import { formatBytes, formatDuration, status, table } from './output';

function bucketAccess(ctx: Context): { s3: S3Client; bucket: string; connections: ReturnType<typeof createConnections> } {
  const { config, path } = ctx.loaded;
  const connections = createConnections(config, path);
  return { s3: connections.s3(30_000), bucket: config.objectStore.backupBucket, connections };
}

const ageOf = (iso: string | undefined, now: Date) => (iso ? Math.round((now.getTime() - new Date(iso).getTime()) / 1000) : null);

/** `ballast status RUN`: one run's live status. */
export async function runStatus(ctx: Context, workflowId: string): Promise<ExitCode> {
  const run = await ctx.run(workflowId);
  const live = run.status === 'RUNNING' ? await run.handle.query<Record<string, unknown>>('status').catch(() => undefined) : undefined;
  const approval = live?.phase === 'awaiting approval' ? await run.handle.query<ApprovalWaiting | null>('approval').catch(() => null) : null;
  let result: unknown = null;
  let failure: string | null = null;
  if (run.status === 'COMPLETED') result = await run.handle.result();
  if (run.status === 'FAILED') failure = await run.handle.result().then(() => null, (err: Error) => (err.cause as Error | undefined)?.message ?? err.message);
  const command = RUNBOOK_COMMANDS.find((c) => c.workflowType === run.type)?.command ?? run.type;
  const webUi = ctx.webUiLink(run.handle.workflowId, run.runId) ?? null;
  const lines = [
    `${run.handle.workflowId} (${run.type}, run ${run.runId}): ${run.status}, started ${run.startTime.toISOString()}${run.closeTime ? `, closed ${run.closeTime.toISOString()}` : ''}`,
    ...(live ? [progressLine(command, live, new Date())] : []),
    ...(approval ? [`waiting for approval of plan ${approval.plan.hash} since ${approval.since}: ballast approve ${run.handle.workflowId} --reason "..."`] : []),
    ...(failure ? [`failure: ${failure}`] : []),
    ...(webUi ? [webUi] : []),
  ];
  ctx.out.result({ ...status(Exit.ok), command: 'status', workflowId: run.handle.workflowId, runId: run.runId, workflowType: run.type, status: run.status, startTime: run.startTime.toISOString(), closeTime: run.closeTime?.toISOString() ?? null, live: live ?? null, approval, result, failure, webUi }, lines.join('\n'));
  return Exit.ok;
}

/** `ballast status`: the platform's recovery posture. */
export async function platformStatus(ctx: Context): Promise<ExitCode> {
  const now = new Date();
  const { config } = ctx.loaded;
  const { s3, bucket, connections } = bucketAccess(ctx);
  const configured = configuredComponents(config);
  let lastComplete: BackupEntry | undefined;
  let lastAny: BackupEntry | undefined;
  let drills: DrillTrendRow[];
  try {
    const newestId = (await listBackupIds(s3, bucket)).at(-1);
    lastAny = newestId ? (await readBackupEntry(s3, bucket, newestId, configured)).entry : undefined;
    lastComplete = lastAny?.state === 'complete' ? lastAny : await newestCompleteBackup(s3, bucket, configured);
    drills = await createRestoreReportActivities({ config, connections }).listDrillReports();
  } finally {
    s3.destroy();
  }
  const lastDrill = drills.at(-1);
  const client = await ctx.client();
  const waiting = await runsWaitingForApproval(client, config.temporal.taskQueue, now);
  const schedules = [];
  for (const [what, scheduleId] of [
    ['backup', config.backup.schedule.scheduleId],
    ['drill', config.drill.schedule.scheduleId],
  ] as const) {
    const d = await client.schedule
      .getHandle(scheduleId)
      .describe()
      .catch(() => undefined);
    schedules.push({ runbook: what, scheduleId, exists: d !== undefined, paused: d?.state.paused ?? null, nextRunAt: d?.info.nextActionTimes[0]?.toISOString() ?? null, lastRunAt: d?.info.recentActions.at(-1)?.takenAt.toISOString() ?? null });
  }
  const document = {
    ...status(Exit.ok),
    command: 'status',
    at: now.toISOString(),
    environment: config.environment,
    lastCompleteBackup: lastComplete ? { backupId: lastComplete.backupId, finishedAt: lastComplete.finishedAt ?? null, consistencyPoint: lastComplete.consistencyPoint ?? null, bytes: lastComplete.bytes, ageSeconds: ageOf(lastComplete.finishedAt, now), rpoExposureSeconds: ageOf(lastComplete.consistencyPoint, now) } : null,
    newestBackup: lastAny ? { backupId: lastAny.backupId, state: lastAny.state } : null,
    rpoTargetMinutes: config.restore.rpoTargetMinutes,
    lastDrill: lastDrill ? { workflowId: lastDrill.workflowId, startedAt: lastDrill.startedAt, backupId: lastDrill.backupId, verified: lastDrill.verified, rtoMinutes: lastDrill.rtoMinutes, rtoMet: lastDrill.rtoMet, rtoTargetMinutes: config.restore.rtoTargetMinutes } : null,
    waitingForApproval: waiting,
    schedules,
  };
  const lines = [
    `environment ${config.environment}, backup bucket ${bucket}`,
    lastComplete
      ? `last complete backup: ${lastComplete.backupId}, finished ${formatDuration((document.lastCompleteBackup!.ageSeconds ?? 0) * 1000)} ago; RPO exposure ${formatDuration((document.lastCompleteBackup!.rpoExposureSeconds ?? 0) * 1000)} (target ${config.restore.rpoTargetMinutes} min)`
      : 'last complete backup: NONE',
    ...(lastAny && lastAny !== lastComplete ? [`newest backup: ${lastAny.backupId} (${lastAny.state})`] : []),
    lastDrill ? `last drill: ${lastDrill.workflowId} at ${lastDrill.startedAt}: RTO ${lastDrill.rtoMinutes} min (target ${config.restore.rtoTargetMinutes}, ${lastDrill.rtoMet ? 'met' : 'BREACHED'})${lastDrill.verified ? '' : ', NOT verified'}` : 'last drill: none',
    waiting.length ? `waiting for approval:\n${waiting.map((w) => `  ${w.workflowId} (${w.workflowType}) for ${formatDuration(w.waitingSeconds * 1000)}: ${w.what}`).join('\n')}` : 'waiting for approval: none',
    `schedules:\n${schedules.map((s) => `  ${s.runbook} ${s.scheduleId}: ${!s.exists ? 'NOT CREATED (start the worker)' : s.paused ? 'paused' : `next ${s.nextRunAt}`}`).join('\n')}`,
  ];
  ctx.out.result(document, lines.join('\n'));
  return Exit.ok;
}

function entryJson(e: BackupEntry, now: Date) {
  return { backupId: e.backupId, state: e.state, bytes: e.bytes, components: e.components, lacks: e.lacks, startedAt: e.startedAt, finishedAt: e.finishedAt ?? null, consistencyPoint: e.consistencyPoint ?? null, ageSeconds: ageOf(e.finishedAt ?? e.startedAt, now), signed: e.signed };
}

/** `ballast backups`: every backup folder, newest first. */
export async function listBackups(ctx: Context): Promise<ExitCode> {
  const now = new Date();
  const { s3, bucket } = bucketAccess(ctx);
  let entries: BackupEntry[];
  try {
    entries = await listBackupEntries(s3, bucket, configuredComponents(ctx.loaded.config));
  } finally {
    s3.destroy();
  }
  const rows = [['ID', 'STATE', 'SIZE', 'COMPONENTS', 'AGE'], ...entries.map((e) => [e.backupId, e.state, formatBytes(e.bytes), e.components.join(',') || '-', formatDuration((ageOf(e.finishedAt ?? e.startedAt, now) ?? 0) * 1000)])];
  ctx.out.result({ ...status(Exit.ok), command: 'backups', bucket, backups: entries.map((e) => entryJson(e, now)) }, entries.length ? table(rows) : `no backups in ${bucket}`);
  return Exit.ok;
}

/** `ballast backups show ID|latest`: one manifest, summarised. */
export async function showBackup(ctx: Context, id: string | undefined): Promise<ExitCode> {
  if (!id) throw usageError('backups show: name the backup (an id from "ballast backups", or latest)');
  const now = new Date();
  const { s3, bucket } = bucketAccess(ctx);
  const configured = configuredComponents(ctx.loaded.config);
  try {
    let backupId = id;
    if (id === 'latest') {
      const found = (await listBackupEntries(s3, bucket, configured)).find((e) => e.state === 'complete');
      if (!found) throw usageError(`backups show latest: no complete backup in ${bucket}`);
      backupId = found.backupId;
    }
    const problem = backupIdProblem(backupId);
    if (problem) throw usageError(`backups show: ${problem}`);
    if (!(await listBackupIds(s3, bucket)).includes(backupId)) throw usageError(`backups show: no backup ${backupId} in ${bucket}`);
    const { entry, manifest } = await readBackupEntry(s3, bucket, backupId, configured);
    const perComponent = manifest?.components ?? [];
    const document = {
      ...status(Exit.ok),
      command: 'backups show',
      bucket,
      backup: entryJson(entry, now),
      serverVersions: manifest?.serverVersions ?? {},
      skipped: manifest?.skipped ?? [],
      totals: manifest?.totals ?? null,
      componentSummaries: perComponent,
      pieces: manifest?.pieces.length ?? 0,
      workflowId: manifest?.workflowId ?? null,
    };
    const lines = [
      `${entry.backupId}: ${entry.state.toUpperCase()}${entry.signed ? ', signed' : ', unsigned'}, ${formatBytes(entry.bytes)}`,
      `  started ${entry.startedAt}${entry.finishedAt ? `, finished ${entry.finishedAt}` : ''}; consistency point ${entry.consistencyPoint ?? '-'}`,
      ...(manifest ? [`  by run ${manifest.workflowId}; ${manifest.totals.pieces} pieces, ${manifest.totals.rows} rows, ${manifest.totals.messages} messages`] : ['  no manifest: this backup is incomplete and is never restored from']),
      ...perComponent.map((c) => `  ${c.component}: ${c.pieces} pieces, ${formatBytes(c.bytes)}, ${c.rows} rows, ${c.messages} messages`),
      ...entry.lacks.map((l) => `  lacks ${l.component}: ${l.reason}`),
      ...Object.entries(manifest?.serverVersions ?? {}).map(([k, v]) => `  ${k} ${v}`),
    ];
    ctx.out.result(document, lines.join('\n'));
    return Exit.ok;
  } finally {
    s3.destroy();
  }
}
