import { createBackupManifestActivities } from './backupManifest';
import { createBackupPlanActivities } from './backupPlan';
import { createBackupRetentionActivities } from './backupRetention';
import { createClickHouseActivities } from './clickhouse';
import { createClickHouseBackupActivities } from './clickhouseBackup';
import type { ActivityDeps } from './deps';
import { createKafkaActivities } from './kafka';
import { createKafkaBackupActivities } from './kafkaBackup';
import { createObjectStoreActivities } from './objectStore';
import { createObjectStoreBackupActivities } from './objectStoreBackup';
import { createPostgresActivities } from './postgres';
import { createPostgresBackupActivities } from './postgresBackup';
import { createClickHouseRestoreActivities } from './clickhouseRestore';
import { createKafkaRestoreActivities } from './kafkaRestore';
import { createKafkaBrokerActivities } from './kafkaBrokers';
import { createKafkaCanaryActivities } from './kafkaCanary';
import { createKafkaRollActivities } from './kafkaRoll';
import { createNotifyActivities } from './notify';
import { createObjectStoreRestoreActivities } from './objectStoreRestore';
import { createPostgresRestoreActivities } from './postgresRestore';
import { createRestorePlanActivities } from './restorePlan';
import { createRestoreReportActivities } from './restoreReport';

export type { ActivityDeps } from './deps';

/** Every activity the worker registers, built from the config's connections. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createPostgresActivities(deps),
    ...createClickHouseActivities(deps),
    ...createKafkaActivities(deps),
    ...createObjectStoreActivities(deps),
    ...createBackupPlanActivities(deps),
    ...createPostgresBackupActivities(deps),
    ...createClickHouseBackupActivities(deps),
    ...createKafkaBackupActivities(deps),
    ...createObjectStoreBackupActivities(deps),
    ...createBackupManifestActivities(deps),
    ...createBackupRetentionActivities(deps),
    ...createRestorePlanActivities(deps),
    ...createRestoreReportActivities(deps),
    ...createPostgresRestoreActivities(deps),
    ...createClickHouseRestoreActivities(deps),
    ...createKafkaRestoreActivities(deps),
    ...createObjectStoreRestoreActivities(deps),
    ...createNotifyActivities(deps),
    ...createKafkaBrokerActivities(deps),
    ...createKafkaRollActivities(deps),
    ...createKafkaCanaryActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
