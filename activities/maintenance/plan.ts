/**
 * compaction's plan: each system's own figures (read-only), the steps they call for in the order
 * they run, and a stable hash an approval names. Also the settings the workflow needs from the
 * config, and where the report is kept.
 */
import type { RowDeletePlan, MaintenanceSystem, MaintenanceSettings, MaintenancePlan, MaintenanceStep, MaintenanceReport, PartitionPlan, PostgresPartitionPlan, PostgresTablePlan, PrefixPlan, RecordDeletePlan, TopicPlan } from '../../contracts/maintenanceTypes';
import { approvalPolicy, planHash } from '../approval/approvals';
import { createClickHouseMaintenanceActivities } from '../clickhouse/maintenance';
import { mergeChangesRows, tablePolicy } from '../clickhouse/maintenancePlan';
import type { ActivityDeps } from '../deps';
import { createKafkaRecordDeleteActivities } from '../kafka/recordDeletes';
import { createKafkaRetentionActivities } from '../kafka/retention';
import { createObjectStoreExpiryActivities } from '../objectStore/expiry';
import { createPostgresPartitionRetentionActivities } from '../postgres/partitionRetention';
import { createPostgresMaintenanceActivities } from '../postgres/vacuum';
import { putJson } from '../storage/backupObjects';

/** The steps the systems' plans call for: merges and vacuums first (no one waits for them), then the destructive ones. */
export function planSteps(
  found: { clickhouse: PartitionPlan[]; rowDeletes: RowDeletePlan[]; postgres: PostgresTablePlan[]; postgresPartitions: PostgresPartitionPlan[]; kafka: TopicPlan[]; kafkaRecordDeletes: RecordDeletePlan[]; buckets: PrefixPlan[] },
  mergePolicy: (database: string, table: string) => { final: boolean; maxParts: number },
): MaintenanceStep[] {
  const { clickhouse, rowDeletes, postgres, postgresPartitions, kafka, kafkaRecordDeletes, buckets } = found;
  const steps: MaintenanceStep[] = [];
  for (const p of clickhouse.filter((x) => x.action === 'merge')) {
    const { final, maxParts } = mergePolicy(p.database, p.table);
    const changesRows = final && mergeChangesRows(p.engine);
    steps.push({
      kind: 'merge',
      id: `clickhouse:merge:${p.database}.${p.table}:${p.partitionId}`,
      summary: `merge ${p.database}.${p.table} partition ${p.partition} (${p.parts} parts, ${p.rows} rows, ${p.bytes} bytes)${final ? ' with FINAL' : ''}${changesRows ? `: FINAL on ${p.engine} changes rows` : ''}`,
      database: p.database,
      table: p.table,
      engine: p.engine,
      partitionId: p.partitionId,
      partition: p.partition,
      final,
      changesRows,
      maxParts,
      before: { parts: p.parts, rows: p.rows, bytes: p.bytes },
    });
  }
  for (const t of postgres.filter((x) => x.action !== 'none')) {
    steps.push({
      kind: 'vacuum',
      id: `postgres:vacuum:${t.database}.${t.schema}.${t.table}`,
      summary: `${t.action === 'vacuum full' ? 'VACUUM (FULL, ANALYZE)' : 'VACUUM (ANALYZE)'} ${t.database}: ${t.schema}.${t.table} (${t.deadTuples} dead, ${t.liveTuples} live tuples)`,
      database: t.database,
      schema: t.schema,
      table: t.table,
      full: t.action === 'vacuum full',
      deadTuples: t.deadTuples,
      liveTuples: t.liveTuples,
    });
  }
  for (const p of clickhouse.filter((x) => x.action === 'drop')) {
    steps.push({
      kind: 'drop',
      destructive: 'partitionDrop',
      id: `clickhouse:drop:${p.database}.${p.table}:${p.partitionId}`,
      summary: `DROP partition ${p.partition} of ${p.database}.${p.table}: ${p.rows} rows, ${p.parts} parts, ${p.bytes} bytes (${p.reason})`,
      database: p.database,
      table: p.table,
      partitionId: p.partitionId,
      partition: p.partition,
      maxDate: p.maxDate,
      before: { parts: p.parts, rows: p.rows, bytes: p.bytes },
    });
  }
  for (const t of postgresPartitions) {
    const [schema, table] = t.table.split('.') as [string, string];
    for (const p of t.partitions.filter((x) => x.action === 'drop')) {
      steps.push({
        kind: 'pgPartitionDrop',
        destructive: 'partitionDrop',
        id: `postgres:partitionDrop:${t.database}.${t.table}:${p.schema}.${p.name}`,
        summary: `DETACH and DROP partition ${p.schema}.${p.name} of ${t.table} in database ${t.database} (${p.bounds}): ${p.rows} rows, ${p.bytes} bytes (${p.reason})`,
        database: t.database,
        schema,
        table,
        parentOid: t.oid!,
        partitionSchema: p.schema,
        partition: p.name,
        partitionOid: p.oid,
        bounds: p.bounds,
        before: { rows: p.rows, bytes: p.bytes },
      });
    }
  }
  for (const r of rowDeletes.filter((x) => x.rows > 0)) {
    steps.push({
      kind: 'rowDelete',
      destructive: 'rowDelete',
      id: `clickhouse:rowDelete:${r.database}.${r.table}:${r.column}<${r.cutoff}`,
      summary: `DELETE ${r.rows} rows FROM ${r.database}.${r.table} WHERE toDate(${r.column}) < ${r.cutoff}`,
      ...r,
    });
  }
  for (const t of kafka.filter((x) => x.changes.length)) {
    steps.push({
      kind: 'topicConfig',
      destructive: 'kafkaConfig',
      id: `kafka:config:${t.topic}`,
      summary: `set topic ${t.topic}: ${t.changes.map((c) => `${c.name} ${c.from ?? '(unset)'} -> ${c.to}`).join(', ')}`,
      topic: t.topic,
      changes: t.changes,
    });
  }
  for (const t of kafkaRecordDeletes) {
    if (!t.records || !t.topicId) continue;
    const partitions = t.partitions.filter((p) => p.records > 0);
    steps.push({
      kind: 'recordDelete',
      destructive: 'recordDelete',
      id: `kafka:recordDelete:${t.topic}<${t.cutoff}`,
      summary: `delete ${t.records} record(s) older than ${t.cutoff} from topic ${t.topic} (${partitions.map((p) => `partition ${p.partition}: ${p.records} up to offset ${p.offset}`).join(', ')})`,
      topic: t.topic,
      topicId: t.topicId,
      cutoff: t.cutoff,
      records: t.records,
      partitions: partitions.map((p) => ({ partition: p.partition, low: p.low, offset: p.offset })),
    });
  }
  for (const b of buckets.filter((x) => x.objects > 0)) {
    steps.push({
      kind: 'expire',
      destructive: 'objectExpiry',
      id: `buckets:expire:${b.bucket}/${b.prefix}`,
      summary: `delete ${b.objects} object(s), ${b.bytes} bytes, under s3://${b.bucket}/${b.prefix} last modified before ${b.cutoff}`,
      bucket: b.bucket,
      prefix: b.prefix,
      cutoff: b.cutoff,
      objects: b.objects,
      bytes: b.bytes,
    });
  }
  return steps;
}

export function createMaintenancePlanActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const m = config.maintenance;
  const clickhouse = createClickHouseMaintenanceActivities(deps);
  const postgres = createPostgresMaintenanceActivities(deps);
  const postgresPartitions = createPostgresPartitionRetentionActivities(deps);
  const kafka = createKafkaRetentionActivities(deps);
  const kafkaRecords = createKafkaRecordDeleteActivities(deps);
  const buckets = createObjectStoreExpiryActivities(deps);

  return {
    /** What compaction needs from the config; workflow code cannot read it itself. */
    async maintenanceSettings(): Promise<MaintenanceSettings> {
      return {
        window: m.window,
        approval: approvalPolicy(config),
        preApproved: m.preApproved,
        backupBeforeDrop: m.backupBeforeDrop,
        busyWaitSeconds: m.busyWaitSeconds,
        mergeTimeoutSeconds: m.clickhouse.merge.timeoutSeconds,
      };
    },

    /** The read-only plan of every system asked for, at `now` (the workflow's clock). */
    async planMaintenance({ now, systems }: { now: string; systems: MaintenanceSystem[] }): Promise<MaintenancePlan> {
      const ch = systems.includes('clickhouse') ? await clickhouse.planClickHouseMaintenance({ now }) : { server: 'not planned', partitions: [], rowDeletes: [] };
      const pg = systems.includes('postgres') ? await postgres.planPostgresMaintenance({ now }) : [];
      const pgPartitions = systems.includes('postgres') ? await postgresPartitions.planPostgresPartitionRetention({ now }) : [];
      const topics = systems.includes('kafka') ? await kafka.planKafkaRetention() : [];
      const recordDeletes = systems.includes('kafka') ? await kafkaRecords.planKafkaRecordDeletes({ now }) : [];
      const prefixes = systems.includes('buckets') ? await buckets.planObjectExpiry({ now }) : [];
      const steps = planSteps({ clickhouse: ch.partitions, rowDeletes: ch.rowDeletes, postgres: pg, postgresPartitions: pgPartitions, kafka: topics, kafkaRecordDeletes: recordDeletes, buckets: prefixes }, (database, table) => tablePolicy(m.clickhouse, database, table).merge);
      return { hash: planHash(steps), plannedAt: now, clickhouse: ch, postgres: pg, postgresPartitions: pgPartitions, kafka: topics, kafkaRecordDeletes: recordDeletes, buckets: prefixes, steps };
    },

    /** Keeps the run's report beside the other reports (reports/maintenance/). */
    async writeMaintenanceReport(report: MaintenanceReport): Promise<string> {
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
