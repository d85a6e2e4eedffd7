import { createApprovalActivities } from './approval/approvals';
import { createBackupManifestActivities } from './backup/manifest';
import { createBackupPlanActivities } from './backup/plan';
import { createBackupRetentionActivities } from './backup/retention';
import { createClickHouseActivities } from './clickhouse/health';
import { createClickHouseBackupActivities } from './clickhouse/backup';
import type { ActivityDeps } from './deps';
import { createKafkaActivities } from './kafka/health';
import { createKafkaBackupActivities } from './kafka/backup';
import { createObjectStoreActivities } from './objectStore/health';
import { createObjectStoreBackupActivities } from './objectStore/backup';
import { createPostgresActivities } from './postgres/health';
import { createPostgresBackupActivities } from './postgres/backup';
import { createClickHouseRestoreActivities } from './clickhouse/restore';
import { createKafkaRestoreActivities } from './kafka/restore';
import { createKafkaBrokerActivities } from './kafka/roll/brokers';
import { createKafkaCanaryActivities } from './kafka/roll/canary';
import { createKafkaRollActivities } from './kafka/roll/report';
import { createNotifyActivities } from './notify/notify';
import { createObjectStoreRestoreActivities } from './objectStore/restore';
import { createPostgresRestoreActivities } from './postgres/restore';
import { createRestorePlanActivities } from './restore/plan';
import { createRestoreReportActivities } from './restore/report';
import { createRestoreLeaseActivities } from './restore/leases';
import { createPlannedRestoreSteps } from './restore/plannedSteps';
import { storingPieceLists } from './backup/pieceLists';
import { createDemoResetActivities } from './demoReset/activities';
import { createClickHouseMaintenanceActivities } from './clickhouse/maintenance';
import { createKafkaRecordDeleteActivities } from './kafka/recordDeletes';
import { createKafkaRetentionActivities } from './kafka/retention';
import { createMaintenancePlanActivities } from './maintenance/plan';
import { createObjectStoreExpiryActivities } from './objectStore/expiry';
import { createPostgresPartitionRetentionActivities } from './postgres/partitionRetention';
import { createPostgresMaintenanceActivities } from './postgres/vacuum';

export type { ActivityDeps } from './deps';

/** Every activity the worker registers, built from the config's connections. */
export function createActivities(deps: ActivityDeps) {
  // Pieces travel by reference: the backup steps store their piece lists and return where, and
  // the restore steps read their pieces from the approved plan (the wrappers keep the system
  // activities' names).
  const restoreSteps = {
    ...createPostgresRestoreActivities(deps),
    ...createClickHouseRestoreActivities(deps),
    ...createKafkaRestoreActivities(deps),
    ...createObjectStoreRestoreActivities(deps),
  };
  return {
    ...createPostgresActivities(deps),
    ...createClickHouseActivities(deps),
    ...createKafkaActivities(deps),
    ...createObjectStoreActivities(deps),
    ...createBackupPlanActivities(deps),
    ...storingPieceLists(deps, createPostgresBackupActivities(deps)),
    ...storingPieceLists(deps, createClickHouseBackupActivities(deps)),
    ...storingPieceLists(deps, createKafkaBackupActivities(deps)),
    ...storingPieceLists(deps, createObjectStoreBackupActivities(deps)),
    ...createBackupManifestActivities(deps),
    ...createBackupRetentionActivities(deps),
    ...createRestorePlanActivities(deps),
    ...createRestoreReportActivities(deps),
    ...createRestoreLeaseActivities(deps),
    ...restoreSteps,
    ...createPlannedRestoreSteps(deps, restoreSteps),
    ...createNotifyActivities(deps),
    ...createKafkaBrokerActivities(deps),
    ...createKafkaRollActivities(deps),
    ...createKafkaCanaryActivities(deps),
    ...createApprovalActivities(deps),
    ...createDemoResetActivities(deps),
    ...createMaintenancePlanActivities(deps),
    ...createClickHouseMaintenanceActivities(deps),
    ...createPostgresMaintenanceActivities(deps),
    ...createPostgresPartitionRetentionActivities(deps),
    ...createKafkaRetentionActivities(deps),
    ...createKafkaRecordDeleteActivities(deps),
    ...createObjectStoreExpiryActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
