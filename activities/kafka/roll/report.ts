import type { RollReport, RollSettings } from '../../../contracts/rollTypes';
import { approvalPolicy } from '../../approval/approvals';
import { putJson } from '../../storage/backupObjects';
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
