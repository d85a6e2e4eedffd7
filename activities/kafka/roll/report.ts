import type { RollReport, RollSettings } from '../../../contracts/rollTypes';
import { approvalPolicy } from '../../approval/approvals';
import { ApplicationFailure } from '@temporalio/activity';
import { Failure } from '../../../contracts/failures';
import { putJson } from '../../storage/backupObjects';
import { acquireLease, callingRun, holderRunningInTemporal, leaseKey, releaseLease } from '../../storage/leases';
import type { ActivityDeps } from '../../deps';

export function createKafkaRollActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  return {
    /** What the rolling restart needs from the config; workflow code cannot read it itself. */
    async kafkaRollSettings(): Promise<RollSettings> {
      return {
        brokers: config.kafka.brokers.map((b) => b.id),
        backend: config.kafka.restart.backend,
        approval: approvalPolicy(config),
        ...config.kafka.roll,
      };
    },

    /** One roll per cluster at a time: refuses, naming the roll that holds the cluster. */
    async acquireRollLease({ clusterId }: { clusterId: string }): Promise<void> {
      const s3 = connections.s3();
      try {
        const lease = await acquireLease(s3, config.objectStore.backupBucket, leaseKey('kafka-roll', clusterId), callingRun(`rolling restart of cluster ${clusterId}`), holderRunningInTemporal);
        if (!lease.acquired) {
          throw ApplicationFailure.nonRetryable(`kafkaRollingRestart: pre-flight failed, no broker was touched: roll ${lease.heldBy.workflowId} is already restarting cluster ${clusterId}; one roll per cluster at a time`, Failure.TargetBusy);
        }
      } finally {
        s3.destroy();
      }
    },

    async releaseRollLease({ clusterId }: { clusterId: string }): Promise<void> {
      const s3 = connections.s3();
      try {
        await releaseLease(s3, config.objectStore.backupBucket, leaseKey('kafka-roll', clusterId), callingRun(`rolling restart of cluster ${clusterId}`));
      } finally {
        s3.destroy();
      }
    },

    /** Keeps the roll's report beside the restore and drill reports. */
    async writeRollReport(report: RollReport): Promise<string> {
      const s3 = connections.s3();
      try {
        await putJson(s3, config.objectStore.backupBucket, report.reportKey, report);
        return report.reportKey;
      } finally {
        s3.destroy();
      }
    },
  };
}
