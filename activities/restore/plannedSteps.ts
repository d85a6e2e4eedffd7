import type { PlannedTaskRequest, RestoreStepResult, RestoreTask, VerifyResult } from '../../contracts/restoreTypes';
import { verifyChecksKey } from '../../contracts/reportKey';
import type { ClickHouseRestoreRequest, ClickHouseVerifyRequest } from '../clickhouse/restore';
import type { KafkaRestoreRequest, KafkaRestoreTargetsRequest } from '../kafka/restoreRequest';
import type { BucketRestoreRequest } from '../objectStore/restore';
import type { PostgresRestoreRequest } from '../postgres/restore';
import type { BackupPiece } from '../../contracts/backupTypes';
import { putJson } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';
import { runOf } from './plan';
import { approvedTask, readApprovedPlan, type StoredRestorePlan } from './storedPlan';

/** The systems' restore, verification and teardown activities, which take their pieces as input. */
export interface SystemRestoreSteps {
  restorePostgresDatabase(req: PostgresRestoreRequest): Promise<RestoreStepResult>;
  verifyPostgresDatabase(req: { target: string; piece: BackupPiece }): Promise<VerifyResult>;
  restoreClickHouseTable(req: ClickHouseRestoreRequest): Promise<RestoreStepResult>;
  verifyClickHouseTable(req: ClickHouseVerifyRequest): Promise<VerifyResult>;
  restoreKafka(req: KafkaRestoreRequest): Promise<RestoreStepResult>;
  verifyKafka(req: KafkaRestoreRequest): Promise<VerifyResult>;
  deleteKafkaRestoreTargets(req: KafkaRestoreTargetsRequest): Promise<{ topics: string[]; groups: string[] }>;
  restoreBucket(req: BucketRestoreRequest): Promise<RestoreStepResult>;
  verifyBucket(req: BucketRestoreRequest): Promise<VerifyResult>;
}

// More checks than this (one per partition of a large table) are stored, not returned: the
// workflow's history, and the report it writes, get the failed ones and a count of the rest.
const MAX_RETURNED_CHECKS = 100;
const FAILED_CHECKS_SHOWN = 20;

/**
 * The restore steps as the workflow calls them: each is given the approved plan by reference and
 * its task's index, reads the stored plan, refuses it unless it is exactly the one approved, and
 * runs the system's own step with the task's pieces. Same names as the system activities, which
 * they replace in the worker.
 */
export function createPlannedRestoreSteps(deps: ActivityDeps, systems: SystemRestoreSteps) {
  const bucket = deps.config.objectStore.backupBucket;

  async function load<K extends RestoreTask['kind']>(req: PlannedTaskRequest, kind: K): Promise<{ plan: StoredRestorePlan; task: Extract<RestoreTask, { kind: K }> }> {
    const s3 = deps.connections.s3(120_000);
    try {
      const plan = await readApprovedPlan(s3, bucket, req.plan);
      return { plan, task: approvedTask(plan, req.task, kind) };
    } finally {
      s3.destroy();
    }
  }

  /** The result, with its checks cut down to what a workflow payload should carry when they are many. */
  async function condensed(result: VerifyResult, task: number): Promise<VerifyResult> {
    if (result.checks.length <= MAX_RETURNED_CHECKS) return result;
    const key = verifyChecksKey(...runOf('verify'), task);
    const s3 = deps.connections.s3(120_000);
    try {
      await putJson(s3, bucket, key, result);
    } finally {
      s3.destroy();
    }
    const shown = result.checks.filter((c) => !c.ok).slice(0, FAILED_CHECKS_SHOWN);
    const rest = result.checks.filter((c) => !shown.includes(c));
    const passed = rest.filter((c) => c.ok).length;
    const summary = { name: `${result.unit}: ${rest.length} further checks (all in ${key})`, expected: `${rest.length} ok`, actual: `${passed} ok`, ok: passed === rest.length };
    return { ...result, checks: [...shown, summary], allChecksKey: key };
  }

  return {
    async restorePostgresDatabase(req: PlannedTaskRequest): Promise<RestoreStepResult> {
      const { task } = await load(req, 'postgresDatabase');
      return systems.restorePostgresDatabase({ restoreId: req.restoreId, database: task.database, target: task.target, piece: task.piece });
    },
    async verifyPostgresDatabase(req: PlannedTaskRequest): Promise<VerifyResult> {
      const { task } = await load(req, 'postgresDatabase');
      return condensed(await systems.verifyPostgresDatabase({ target: task.target, piece: task.piece }), req.task);
    },
    async restoreClickHouseTable(req: PlannedTaskRequest): Promise<RestoreStepResult> {
      const { plan, task } = await load(req, 'clickhouseTable');
      return systems.restoreClickHouseTable({ restoreId: req.restoreId, backupId: plan.backupId, database: task.database, table: task.table, targetDatabase: task.target, pieces: task.pieces });
    },
    async verifyClickHouseTable(req: PlannedTaskRequest): Promise<VerifyResult> {
      const { task } = await load(req, 'clickhouseTable');
      return condensed(await systems.verifyClickHouseTable({ database: task.database, table: task.table, targetDatabase: task.target, pieces: task.pieces }), req.task);
    },
    async restoreKafka(req: PlannedTaskRequest): Promise<RestoreStepResult> {
      const { plan, task } = await load(req, 'kafka');
      return systems.restoreKafka({ backupId: plan.backupId, metadata: task.metadata, topicPieces: task.topicPieces, suffix: task.suffix, topics: task.topics });
    },
    async verifyKafka(req: PlannedTaskRequest): Promise<VerifyResult> {
      const { plan, task } = await load(req, 'kafka');
      return condensed(await systems.verifyKafka({ backupId: plan.backupId, metadata: task.metadata, topicPieces: task.topicPieces, suffix: task.suffix, topics: task.topics }), req.task);
    },
    async deleteKafkaRestoreTargets(req: PlannedTaskRequest): Promise<{ topics: string[]; groups: string[] }> {
      const { task } = await load(req, 'kafka');
      return systems.deleteKafkaRestoreTargets({ metadata: task.metadata, suffix: task.suffix, topics: task.topics });
    },
    async restoreBucket(req: PlannedTaskRequest): Promise<RestoreStepResult> {
      const { task } = await load(req, 'bucket');
      return systems.restoreBucket({ bucket: task.bucket, target: task.target, listing: task.listing, restoreId: req.restoreId });
    },
    async verifyBucket(req: PlannedTaskRequest): Promise<VerifyResult> {
      const { task } = await load(req, 'bucket');
      return condensed(await systems.verifyBucket({ bucket: task.bucket, target: task.target, listing: task.listing }), req.task);
    },
  };
}
