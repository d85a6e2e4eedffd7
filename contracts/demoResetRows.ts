/**
 * The plan's action lines and the report's table (component, action, before, after, kept), built
 * from the figures. Pure: the plan activity, the workflow and the unit tests share it.
 */
import { COMPONENTS, type Component } from './backupTypes';
import type { DemoFigures, DemoResetPlan, DemoResetRow } from './demoResetTypes';

const sum = (ns: number[]) => ns.reduce((a, b) => a + b, 0);

interface Target {
  component: Component;
  target: string;
  action: string;
  /** The figure a person reads: "1,204 messages in 3 partitions", "12 rows", "40 objects...". */
  describe: (figures: DemoFigures) => string;
}

/** One row per thing the reset acts on, with how to read its figure from any DemoFigures. */
function targetsOf(plan: Pick<DemoResetPlan, 'figures'>): Target[] {
  const { kafka, postgres, clickhouse, objectStore } = plan.figures;
  const targets: Target[] = [];
  for (const t of kafka?.topics ?? []) {
    const compacted = !t.cleanupPolicy.split(',').includes('delete');
    targets.push({
      component: 'kafka',
      target: `topic ${t.topic}`,
      action: `purge messages${compacted ? ` (cleanup.policy ${t.cleanupPolicy}: delete added for the purge, then restored)` : ''}`,
      describe: (f) => {
        const now = f.kafka?.topics.find((x) => x.topic === t.topic);
        return now ? `${sum(now.partitions.map((p) => p.messages))} messages in ${now.partitions.length} partitions` : 'absent';
      },
    });
  }
  for (const g of kafka?.groups ?? []) {
    targets.push({
      component: 'kafka',
      target: `consumer group ${g.groupId}`,
      action: 'move committed offsets to the new log start',
      describe: (f) => {
        const now = f.kafka?.groups.find((x) => x.groupId === g.groupId);
        const topics = f.kafka?.topics ?? [];
        if (!now) return 'no committed offsets';
        const lag = sum(now.offsets.map((o) => Math.max(0, (topics.find((t) => t.topic === o.topic)?.partitions.find((p) => p.partition === o.partition)?.highWatermark ?? o.offset) - o.offset)));
        return `${now.offsets.length} offsets, lag ${lag}, ${now.members} members`;
      },
    });
  }
  for (const [component, databases] of [
    ['postgres', postgres],
    ['clickhouse', clickhouse],
  ] as const) {
    for (const db of databases ?? []) {
      for (const t of db.tables) {
        targets.push({
          component,
          target: `${component} ${db.database}.${t.table}`,
          action: component === 'postgres' ? 'TRUNCATE ... RESTART IDENTITY CASCADE' : 'TRUNCATE TABLE',
          describe: (f) => {
            const now = f[component]?.find((d) => d.database === db.database)?.tables.find((x) => x.table === t.table);
            return now ? `${now.rows} rows` : 'absent';
          },
        });
      }
    }
  }
  for (const b of objectStore ?? []) {
    targets.push({
      component: 'objectStore',
      target: `bucket ${b.bucket}`,
      action: 'delete every object version and delete marker (bucket and policy stay)',
      describe: (f) => {
        const now = f.objectStore?.find((x) => x.bucket === b.bucket);
        return now ? `${now.objects} objects, ${now.versions} versions, ${now.deleteMarkers} delete markers, ${now.bytes} bytes` : 'absent';
      },
    });
  }
  return targets;
}

/** The plan's destructive actions, one line each, for the person who confirms. */
export function planActions(plan: Pick<DemoResetPlan, 'figures' | 'kept' | 'reseed'>): string[] {
  const lines = targetsOf(plan).map((t) => `${t.action}: ${t.target} (${t.describe(plan.figures)})`);
  for (const k of plan.kept) lines.push(`keep ${k} as it is`);
  lines.push(plan.reseed === 'empty' ? 'reseed: none (left empty)' : `reseed: restore golden backup ${plan.reseed.backup}`);
  return lines;
}

/** The report's table. `after` absent: a dry run, or a reset that stopped before its verification. */
export function reportRows(plan: DemoResetPlan, after: DemoFigures | undefined, dryRun: boolean): DemoResetRow[] {
  const rows: DemoResetRow[] = targetsOf(plan).map((t) => ({
    component: t.component,
    target: t.target,
    action: dryRun ? `would ${t.action}` : t.action,
    before: t.describe(plan.figures),
    after: after ? t.describe(after) : dryRun ? 'unchanged (dry run)' : 'not verified',
    kept: false,
  }));
  for (const component of COMPONENTS.filter((c) => plan.kept.includes(c))) {
    rows.push({ component, target: component, action: 'kept', before: '', after: '', kept: true });
  }
  return rows;
}

/** What is not empty in `after`, one line each: an empty list means the wipe reached zero everywhere. */
export function leftovers(after: DemoFigures): string[] {
  const left: string[] = [];
  for (const t of after.kafka?.topics ?? []) {
    for (const p of t.partitions) if (p.messages !== 0) left.push(`kafka ${t.topic}[${p.partition}]: ${p.messages} messages left`);
  }
  for (const g of after.kafka?.groups ?? []) {
    for (const o of g.offsets) {
      const start = after.kafka?.topics.find((t) => t.topic === o.topic)?.partitions.find((p) => p.partition === o.partition)?.logStart;
      if (start !== undefined && o.offset < start) left.push(`kafka group ${g.groupId} ${o.topic}[${o.partition}]: offset ${o.offset} before the log start ${start}`);
    }
  }
  for (const [component, databases] of [
    ['postgres', after.postgres],
    ['clickhouse', after.clickhouse],
  ] as const) {
    for (const db of databases ?? []) for (const t of db.tables) if (t.rows !== 0) left.push(`${component} ${db.database}.${t.table}: ${t.rows} rows left`);
  }
  for (const b of after.objectStore ?? []) {
    if (b.versions + b.deleteMarkers !== 0) left.push(`bucket ${b.bucket}: ${b.versions} versions and ${b.deleteMarkers} delete markers left`);
  }
  return left;
}
