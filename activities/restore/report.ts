import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { ApprovalPolicy } from '../../contracts/approvalTypes';
import type { RestoreReport } from '../../contracts/restoreTypes';
import { approvalPolicy } from '../approval/approvals';
import { getJson, putJson } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';

/** What a restore or drill needs from the config; workflow code cannot read it itself. */
export interface RestoreSettings {
  environment: string;
  rtoTargetMinutes: number;
  rpoTargetMinutes: number;
  approval: ApprovalPolicy;
  concurrency: number;
  drill: { suffix: string; bucketSuffix: string; scheduleId: string; schedulePreApproved: boolean; scratchPreApproved: boolean };
  postgresDatabases: string[];
  clickhouseDatabases: string[];
  buckets: string[];
  backupBucket: string;
}

/** One drill in the RTO trend. */
export interface DrillTrendRow {
  workflowId: string;
  startedAt: string;
  backupId: string;
  verified: boolean;
  rtoMinutes: number;
  rtoMet: boolean;
  rpoMinutes: number;
  rpoMet: boolean;
  reportKey: string;
}

export function createRestoreReportActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;
  return {
    async restoreSettings(): Promise<RestoreSettings> {
      return {
        environment: config.environment,
        rtoTargetMinutes: config.restore.rtoTargetMinutes,
        rpoTargetMinutes: config.restore.rpoTargetMinutes,
        approval: approvalPolicy(config),
        concurrency: config.restore.concurrency,
        drill: {
          suffix: config.drill.suffix,
          bucketSuffix: config.drill.bucketSuffix,
          scheduleId: config.drill.schedule.scheduleId,
          schedulePreApproved: config.drill.schedulePreApproved,
          scratchPreApproved: config.drill.scratchPreApproved,
        },
        postgresDatabases: config.postgres.databases,
        clickhouseDatabases: config.clickhouse.databases.map((d) => d.name),
        buckets: config.objectStore.buckets,
        backupBucket: bucket,
      };
    },

    async writeRestoreReport(report: RestoreReport): Promise<string> {
      const s3 = connections.s3();
      try {
        await putJson(s3, bucket, report.reportKey, report);
        return report.reportKey;
      } finally {
        s3.destroy();
      }
    },

    /** Every kept drill report, oldest first: the RTO trend. */
    async listDrillReports(): Promise<DrillTrendRow[]> {
      const s3 = connections.s3();
      try {
        const keys: string[] = [];
        let token: string | undefined;
        do {
          const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'reports/drills/', ContinuationToken: token }));
          keys.push(...(page.Contents ?? []).map((o) => o.Key!));
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        const rows: DrillTrendRow[] = [];
        for (const key of keys.sort()) {
          const r = await getJson<RestoreReport>(s3, bucket, key);
          if (!r) continue;
          rows.push({
            workflowId: r.workflowId,
            startedAt: r.startedAt,
            backupId: r.backupId,
            verified: r.verified,
            rtoMinutes: r.rto.measuredMinutes,
            rtoMet: r.rto.met,
            rpoMinutes: r.rpo.measuredMinutes,
            rpoMet: r.rpo.met,
            reportKey: key,
          });
        }
        return rows;
      } finally {
        s3.destroy();
      }
    },
  };
}
