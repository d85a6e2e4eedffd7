import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  executeChild,
  proxyActivities,
  setCurrentDetails,
  patched,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import { makeBackupId } from '../contracts/backupId';
import {
  COMPONENTS,
  type BackupManifest,
  type BackupPlan,
  type BackupPlanRequest,
  type Component,
  type ComponentSummary,
  type RetentionReport,
  type SkippedComponent,
} from '../contracts/backupTypes';
import { mapLimit } from '../contracts/concurrency';
import { BACKUP_NON_RETRYABLE, backupStep, type BackupContext } from './backupSteps';
import { surfaceNonRetryable } from './surfacedFailure';
import { healthCheck } from './healthCheck';
import { checkSystems } from './systemChecks';
import { parseInput } from './input';
import { backupIdKey, environmentKey } from './searchAttributes';
import type { HealthReport, SystemName } from '../contracts/healthTypes';
import { Failure } from '../contracts/failures';
import { heartbeatingActivities } from './activityOptions';

const { planBackup, writeManifest, applyRetention } = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '1 hour', maximumAttempts: 5, nonRetryableErrorTypes: BACKUP_NON_RETRYABLE }),
);

/**
 * Runs started before the pre-flight checks ran beside the plan replay the old order: a child
 * healthCheck workflow, then the plan.
 */
const PREFLIGHT_BESIDE_PLAN = 'preflight-beside-plan';

export const inputSchema = z.strictObject({
  /** Components to back up; every one by default. */
  components: z.array(z.enum(COMPONENTS)).min(1).optional(),
  /** Components deliberately left out, each with the reason the manifest records. */
  skip: z.partialRecord(z.enum(COMPONENTS), z.string().min(1, 'give the reason for skipping')).optional(),
  postgresDatabases: z.array(z.string().min(1)).min(1).optional(),
  /** "database" (every configured table) or "database.table". */
  clickhouseTables: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/, 'must be database or database.table')).min(1).optional(),
  /**
   * "database.table" to the partition ids (system.parts.partition_id) to back up of it; its other
   * partitions are left out and the backup is partial. Every partition of every table by default.
   */
  clickhousePartitions: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$/, 'must be database.table'), z.array(z.string().min(1)).min(1, 'name at least one partition id'))
    .optional(),
  kafkaDataTopics: z.array(z.string().min(1)).optional(),
  buckets: z.array(z.string().min(1)).optional(),
  /** Apply the retention policy after the backup (default true). */
  retention: z.boolean().optional(),
});
export type PlatformBackupInput = z.input<typeof inputSchema>;

export interface ComponentProgress {
  tasks: number;
  done: number;
  running: string[];
  bytes: number;
  rows: number;
  messages: number;
}

export interface BackupStatus {
  phase: 'validating' | 'pre-flight' | 'planning' | 'backing up' | 'writing manifest' | 'retention' | 'done';
  backupId?: string;
  startedAt: string;
  elapsedMs: number;
  components: Partial<Record<Component, ComponentProgress>>;
  skipped: SkippedComponent[];
  resumedPieces: number;
}

export const backupStatusQuery = defineQuery<BackupStatus>('status');

export interface PlatformBackupResult {
  backupId: string;
  manifestKey: string;
  bucket: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  consistencyPoint: string;
  components: ComponentSummary[];
  skipped: SkippedComponent[];
  /** Every configured component backed up in full; a partial backup is never "latest". */
  complete: boolean;
  /** What a partial backup lacks, and why. */
  lacks: SkippedComponent[];
  totals: BackupManifest['totals'];
  /** Pieces a retried activity found already complete instead of writing again. */
  resumedPieces: number;
  retention?: RetentionReport;
  phaseDurationsMs: Record<string, number>;
}

/**
 * Runbook: "nightly platform backup".
 * 1. Check the input; 2. pre-flight health check of what will be backed up; 3. plan (every
 * database, table, topic and bucket named exists) — nothing is written before this point;
 * 4. back up every piece, a bounded number at once; 5. write the manifest, last; 6. retention.
 */
export async function platformBackup(input: PlatformBackupInput = {}): Promise<PlatformBackupResult> {
  const started = new Date();
  const phaseDurationsMs: Record<string, number> = {};
  const status: BackupStatus = {
    phase: 'validating',
    startedAt: started.toISOString(),
    elapsedMs: 0,
    components: {},
    skipped: [],
    resumedPieces: 0,
  };
  setHandler(backupStatusQuery, () => ({ ...status, elapsedMs: Date.now() - started.getTime() }));
  let phaseStarted = Date.now();
  const enter = (phase: BackupStatus['phase'], details: string) => {
    phaseDurationsMs[status.phase] = (phaseDurationsMs[status.phase] ?? 0) + Date.now() - phaseStarted;
    phaseStarted = Date.now();
    status.phase = phase;
    setCurrentDetails(details);
  };

  const request = parseInput('platformBackup', inputSchema, input);
  const skipped: SkippedComponent[] = Object.entries(request.skip ?? {}).map(([component, reason]) => ({
    component: component as Component,
    reason,
  }));
  const components = [...new Set(request.components ?? COMPONENTS)];
  for (const component of COMPONENTS.filter((c) => !components.includes(c) && !skipped.some((s) => s.component === c))) {
    skipped.push({ component, reason: 'not requested in input.components' });
  }
  status.skipped = skipped;
  const active = components.filter((c) => !skipped.some((s) => s.component === c));
  if (active.length === 0) {
    throw ApplicationFailure.nonRetryable('platformBackup: invalid input: every component is skipped; nothing to back up', Failure.InvalidInput);
  }

  const systems = [...new Set<SystemName>([...active, 'objectStore'])];
  const planRequest: BackupPlanRequest = {
    components: active,
    skip: skipped,
    postgresDatabases: request.postgresDatabases,
    clickhouseTables: request.clickhouseTables,
    ...(request.clickhousePartitions ? { clickhousePartitions: request.clickhousePartitions } : {}),
    kafkaDataTopics: request.kafkaDataTopics,
    buckets: request.buckets,
  };
  let health: HealthReport;
  let plan: BackupPlan;
  if (patched(PREFLIGHT_BESIDE_PLAN)) {
    // Both only read: the plan runs beside the checks, and a pre-flight failure cancels it. The
    // checks run as this workflow's own activities, not a child workflow: a child's start and
    // its workflow tasks cost more than the checks themselves in a small backup.
    enter('pre-flight', `Pre-flight health check of ${active.join(', ')} and the backup bucket; planning meanwhile.`);
    const planning = new CancellationScope();
    const planned = planning.run(() => surfaceNonRetryable(planBackup(planRequest)));
    planned.catch(() => undefined);
    health = await checkSystems(systems);
    if (!health.healthy) {
      planning.cancel();
      throw preflightFailure(health);
    }
    enter('planning', 'Checking that every database, table, topic and bucket to back up exists.');
    plan = await planned;
  } else {
    enter('pre-flight', `Pre-flight health check of ${active.join(', ')} and the backup bucket.`);
    health = await executeChild(healthCheck, {
      workflowId: `${workflowInfo().workflowId}-preflight`,
      args: [{ systems }],
    });
    if (!health.healthy) throw preflightFailure(health);
    enter('planning', 'Checking that every database, table, topic and bucket to back up exists.');
    plan = await surfaceNonRetryable(planBackup(planRequest));
  }

  const backupId = makeBackupId(started, uuid4().replace(/-/g, ''));
  status.backupId = backupId;
  upsertSearchAttributes([
    { key: backupIdKey, value: backupId },
    { key: environmentKey, value: plan.environment },
  ]);
  for (const task of plan.tasks) {
    const progress = (status.components[task.component] ??= { tasks: 0, done: 0, running: [], bytes: 0, rows: 0, messages: 0 });
    progress.tasks++;
  }

  enter('backing up', `Backing up ${plan.tasks.length} pieces into backups/${backupId}/, ${plan.concurrency} at a time.`);
  const context: BackupContext = { backupId, previousBackupId: plan.previousBackupId };
  const results = await mapLimit(plan.tasks, plan.concurrency, async (task) => {
    const progress = status.components[task.component]!;
    const step = backupStep(task);
    const label = step.label();
    progress.running.push(label);
    setCurrentDetails(`Backing up into backups/${backupId}/: running ${runningLabels(status).join(', ')}.`);
    const result = await surfaceNonRetryable(step.run(context));
    progress.running = progress.running.filter((r) => r !== label);
    progress.done++;
    progress.bytes += result.bytes;
    progress.rows += result.rows;
    progress.messages += result.messages;
    if (result.resumed) status.resumedPieces += result.pieces;
    return result;
  });

  enter('writing manifest', `Verifying every object and writing backups/${backupId}/manifest.json.`);
  const manifest = await surfaceNonRetryable(writeManifest({
    backupId,
    workflowId: workflowInfo().workflowId,
    runId: workflowInfo().runId,
    environment: plan.environment,
    startedAt: started.toISOString(),
    pieceLists: results.map(({ key, sha256 }) => ({ key, sha256 })),
    skipped,
    serverVersions: serverVersions(health),
    previousBackupId: plan.previousBackupId,
    narrowed: plan.narrowed,
  }));

  let retention: RetentionReport | undefined;
  if (request.retention !== false) {
    enter('retention', 'Applying the retention policy to the backup bucket.');
    retention = await applyRetention({ currentBackupId: backupId });
  }

  const lacks = manifest.lacks ?? [];
  enter(
    'done',
    lacks.length === 0
      ? `Backup ${backupId} complete: ${manifest.totals.pieces} pieces, ${manifest.totals.bytes} bytes.`
      : `Backup ${backupId} written, PARTIAL (not counted as "latest" nor in the daily, weekly and monthly retention slots): ` +
          `${manifest.totals.pieces} pieces, ${manifest.totals.bytes} bytes; it lacks ${lacks.map((l) => `${l.component} (${l.reason})`).join(', ')}.`,
  );
  const finished = new Date();
  return {
    backupId,
    manifestKey: `backups/${backupId}/manifest.json`,
    bucket: plan.backupBucket,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    consistencyPoint: manifest.consistencyPoint,
    components: manifest.components,
    skipped,
    complete: lacks.length === 0,
    lacks,
    totals: manifest.totals,
    resumedPieces: status.resumedPieces,
    retention,
    phaseDurationsMs,
  };
}

function preflightFailure(health: HealthReport): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `platformBackup: pre-flight failed, nothing was backed up: ${health.summary.filter((l) => l.includes('UNHEALTHY')).join('; ')}. ` +
      'Fix the system, or skip it explicitly with input.skip (the manifest will say so).',
    Failure.PreflightFailed,
    health,
  );
}

function runningLabels(status: BackupStatus): string[] {
  return Object.values(status.components).flatMap((c) => c?.running ?? []);
}

function serverVersions(health: HealthReport): Record<string, string> {
  const versions: Record<string, string> = {};
  for (const system of health.systems) {
    if (typeof system.figures.version === 'string') versions[system.system] = system.figures.version;
    if (typeof system.figures.clusterId === 'string') versions[`${system.system}ClusterId`] = system.figures.clusterId;
  }
  return versions;
}
