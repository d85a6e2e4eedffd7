/**
 * The plan's action lines and the report's table (component, action, before, after, kept), built
 * from the figures. Pure: the plan activity, the workflow and the unit tests share it.
 */
import { COMPONENTS, type Component } from './backupTypes';
import type { DemoFigures, DemoResetPlan, DemoResetRow, GoldenReseed } from './demoResetTypes';

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

interface GoldenTarget {
  component: Component;
  target: string;
  /** The golden backup's figure, read as `describe` reads the live one: equal strings, equal figures. */
  figure: string;
  describe: (figures: DemoFigures) => string;
}

const messagesIn = (partitions: { messages: number }[]) => `${sum(partitions.map((p) => p.messages))} messages in ${partitions.length} partitions`;
const objectsIn = (objects: number, bytes: number) => `${objects} objects, ${bytes} bytes`;

/** One row per thing the golden backup loads, with its figure in the backup and how to read it live. */
function goldenTargets(golden: GoldenReseed): GoldenTarget[] {
  const targets: GoldenTarget[] = [];
  for (const [component, databases] of [
    ['postgres', golden.figures.postgres],
    ['clickhouse', golden.figures.clickhouse],
  ] as const) {
    for (const db of databases) {
      for (const t of db.tables) {
        targets.push({
          component,
          target: `${component} ${db.database}.${t.table}`,
          figure: `${t.rows} rows`,
          describe: (f) => {
            const now = f[component]?.find((d) => d.database === db.database)?.tables.find((x) => x.table === t.table);
            return now ? `${now.rows} rows` : 'absent';
          },
        });
      }
    }
  }
  for (const t of golden.figures.kafka) {
    targets.push({
      component: 'kafka',
      target: `topic ${t.topic}`,
      figure: messagesIn(t.partitions),
      describe: (f) => {
        const now = f.kafka?.topics.find((x) => x.topic === t.topic);
        return now ? messagesIn(now.partitions.filter((p) => p.messages > 0 || t.partitions.some((g) => g.partition === p.partition))) : 'absent';
      },
    });
  }
  for (const b of golden.figures.objectStore) {
    targets.push({
      component: 'objectStore',
      target: `bucket ${b.bucket}`,
      figure: objectsIn(b.objects, b.bytes),
      describe: (f) => {
        const now = f.objectStore?.find((x) => x.bucket === b.bucket);
        return now ? objectsIn(now.objects, now.bytes) : 'absent';
      },
    });
  }
  return targets;
}

/** The plan's destructive actions, one line each, for the person who confirms. */
export function planActions(plan: Pick<DemoResetPlan, 'figures' | 'kept' | 'reseed' | 'golden'>): string[] {
  const lines = targetsOf(plan).map((t) => `${t.action}: ${t.target} (${t.describe(plan.figures)})`);
  for (const k of plan.kept) lines.push(`keep ${k} as it is`);
  if (plan.reseed === 'empty') lines.push('reseed: none (left empty)');
  else if (!plan.golden) lines.push(`reseed: none (every component is kept; golden backup ${plan.reseed.backup} not needed)`);
  else {
    const g = plan.golden;
    lines.push(`reseed: load golden backup ${g.backupId} (${g.field}; manifest signed by key ${g.manifestKeyId}, consistency point ${g.consistencyPoint}) with the restore's own steps, into the demo's own names`);
    for (const t of goldenTargets(g)) lines.push(`load from golden backup ${g.backupId}: ${t.target} (${t.figure})`);
  }
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
  if (plan.golden) {
    const action = `load from golden backup ${plan.golden.backupId}`;
    for (const t of goldenTargets(plan.golden)) {
      rows.push({ component: t.component, target: t.target, action: dryRun ? `would ${action}` : action, before: `golden: ${t.figure}`, after: after ? t.describe(after) : dryRun ? 'unchanged (dry run)' : 'not verified', kept: false });
    }
  }
  for (const component of COMPONENTS.filter((c) => plan.kept.includes(c))) {
    rows.push({ component, target: component, action: 'kept', before: '', after: '', kept: true });
  }
  return rows;
}

/**
 * Where `after` differs from the golden backup's figures, one line each: an empty list means the
 * reseeded demo holds exactly what the golden backup holds (row counts per table, messages per
 * partition, objects and bytes per bucket), and nothing more. Kafka offsets are not compared: the
 * purge moved each log start, so the same messages sit at other offsets.
 */
export function goldenMismatches(after: DemoFigures, golden: GoldenReseed): string[] {
  const wrong: string[] = [];
  for (const t of goldenTargets(golden)) {
    const now = t.describe(after);
    if (now !== t.figure) wrong.push(`${t.target}: ${now}, the golden backup holds ${t.figure}`);
  }
  for (const t of golden.figures.kafka) {
    const now = after.kafka?.topics.find((x) => x.topic === t.topic);
    for (const p of now?.partitions ?? []) {
      const expected = t.partitions.find((g) => g.partition === p.partition)?.messages ?? 0;
      if (p.messages !== expected) wrong.push(`kafka ${t.topic}[${p.partition}]: ${p.messages} messages, the golden backup holds ${expected}`);
    }
  }
  for (const [component, databases] of [
    ['postgres', after.postgres],
    ['clickhouse', after.clickhouse],
  ] as const) {
    for (const db of databases ?? []) {
      const inGolden = golden.figures[component].find((d) => d.database === db.database);
      for (const t of db.tables) {
        if (t.rows !== 0 && !inGolden?.tables.some((g) => g.table === t.table)) wrong.push(`${component} ${db.database}.${t.table}: ${t.rows} rows, not in the golden backup`);
      }
    }
  }
  for (const t of after.kafka?.topics ?? []) {
    const messages = sum(t.partitions.map((p) => p.messages));
    if (messages !== 0 && !golden.figures.kafka.some((g) => g.topic === t.topic)) wrong.push(`kafka ${t.topic}: ${messages} messages, not in the golden backup`);
  }
  for (const b of after.objectStore ?? []) {
    if (!golden.figures.objectStore.some((g) => g.bucket === b.bucket) && b.versions + b.deleteMarkers !== 0) wrong.push(`bucket ${b.bucket}: ${b.versions} versions, not in the golden backup`);
    else if (b.versions !== b.objects || b.deleteMarkers !== 0) wrong.push(`bucket ${b.bucket}: ${b.versions} versions and ${b.deleteMarkers} delete markers for ${b.objects} objects: older versions left`);
  }
  return wrong;
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
