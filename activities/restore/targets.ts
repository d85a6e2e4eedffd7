/**
 * Where each piece of a backup goes, and whether that is allowed: every target is derived from
 * the backup and the request, and checked at plan time against the whole platform inventory, so
 * a typo, a config that changed since the backup, or a drill that would land on production is
 * refused before anything is touched.
 */
import type { BackupPiece } from '../../contracts/backupTypes';
import type { RestoreTargets, RestoreTask } from '../../contracts/restoreTypes';

/** What the config says is production: a restore may write there only in place, a drill never. */
export interface Inventory {
  postgres: string[];
  postgresMaintenance: string;
  clickhouse: string[];
  buckets: string[];
  backupBucket: string;
}

export interface ScratchSuffixes {
  suffix: string;
  bucketSuffix: string;
}

// The Postgres restore step's own limit: a restored database is loaded as
// `<target>__ballast_loading` and a replaced one kept as `<target>_before_<8 chars>`, and both
// must fit Postgres's 63-byte identifiers with room to spare.
const POSTGRES_TARGET_MAX = 40;
const POSTGRES_RESERVED = ['postgres', 'template0', 'template1'];
const CLICKHOUSE_RESERVED = ['system', 'information_schema', '_temporary_and_external_tables'];
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** The sources each system's pieces come from: databases, ClickHouse databases, buckets. */
export function sourcesOf(pieces: BackupPiece[]): { postgres: string[]; clickhouse: string[]; buckets: string[] } {
  const postgres = new Set<string>();
  const clickhouse = new Set<string>();
  const buckets = new Set<string>();
  for (const piece of pieces) {
    if (piece.component === 'postgres') postgres.add(piece.name);
    if (piece.component === 'clickhouse') clickhouse.add(piece.name.slice(0, piece.name.indexOf('.')));
    if (piece.component === 'objectStore') buckets.add(String(piece.details?.bucket ?? piece.name.replace(/\/listing$/, '')));
  }
  return { postgres: [...postgres].sort(), clickhouse: [...clickhouse].sort(), buckets: [...buckets].sort() };
}

/**
 * A drill's targets: a scratch name for every piece the backup holds, whether or not the config
 * still lists it (a database dropped from the config since the backup must not land on its
 * production name).
 */
export function scratchTargets(pieces: BackupPiece[], scratch: ScratchSuffixes): RestoreTargets {
  const sources = sourcesOf(pieces);
  return {
    postgres: Object.fromEntries(sources.postgres.map((d) => [d, `${d}${scratch.suffix}`])),
    clickhouse: Object.fromEntries(sources.clickhouse.map((d) => [d, `${d}${scratch.suffix}`])),
    kafkaSuffix: scratch.suffix,
    buckets: Object.fromEntries(sources.buckets.map((b) => [b, `${b}${scratch.bucketSuffix}`])),
  };
}

/**
 * Every reason these targets must not be restored to, or none. `scratch` is set for a drill: then
 * every target must be its source's scratch name.
 */
export function targetProblems(pieces: BackupPiece[], tasks: RestoreTask[], targets: RestoreTargets, inventory: Inventory, scratch?: ScratchSuffixes): string[] {
  const problems: string[] = [];
  const restored = {
    postgres: new Set(tasks.flatMap((t) => (t.kind === 'postgresDatabase' ? [t.database] : []))),
    clickhouse: new Set(tasks.flatMap((t) => (t.kind === 'clickhouseTable' ? [t.database] : []))),
    buckets: new Set(tasks.flatMap((t) => (t.kind === 'bucket' ? [t.bucket] : []))),
  };
  const inBackup = sourcesOf(pieces);
  const labels = { postgres: 'Postgres database', clickhouse: 'ClickHouse database', buckets: 'bucket' } as const;
  for (const system of ['postgres', 'clickhouse', 'buckets'] as const) {
    const map = targets[system];
    for (const source of Object.keys(map)) {
      if (!restored[system].has(source)) {
        const has = inBackup[system].length ? inBackup[system].join(', ') : 'none';
        problems.push(`targets.${system}.${source}: this restore has no ${labels[system]} ${source} (the backup holds: ${has}; components may leave some out)`);
      }
    }
    const bySource = new Map<string, string[]>();
    for (const source of restored[system]) {
      const target = map[source] ?? source;
      bySource.set(target, [...(bySource.get(target) ?? []), source]);
    }
    for (const [target, sources] of bySource) {
      if (sources.length > 1) problems.push(`targets.${system}: ${sources.join(' and ')} would both be restored into ${target}`);
    }
  }

  const production = { postgres: inventory.postgres, clickhouse: inventory.clickhouse, buckets: inventory.buckets };
  const check = (system: 'postgres' | 'clickhouse' | 'buckets', source: string, target: string, suffix: string | undefined) => {
    const label = `${labels[system]} ${source}`;
    if (scratch) {
      if (target !== `${source}${suffix}`) problems.push(`${label}: a drill restores into scratch names only (${source}${suffix}), not ${target}`);
      if (production[system].includes(target)) problems.push(`${label}: the scratch name ${target} is a production ${labels[system]} in the config`);
    } else if (target === source) {
      if (!production[system].includes(source)) {
        problems.push(`${label}: restoring it in place needs it in the config (it is not listed there any more): name a target for it, or leave ${system === 'buckets' ? 'objectStore' : system} out of components`);
      }
    } else if (production[system].includes(target)) {
      problems.push(`${label}: its target ${target} is another production ${labels[system]}; a restore writes to production only in place`);
    }
  };
  for (const task of tasks) {
    switch (task.kind) {
      case 'postgresDatabase':
        check('postgres', task.database, task.target, scratch?.suffix);
        if (POSTGRES_RESERVED.includes(task.target) || task.target === inventory.postgresMaintenance) problems.push(`Postgres database ${task.database}: ${task.target} is the server's own database and is never a target`);
        if (task.target.length > POSTGRES_TARGET_MAX) problems.push(`Postgres database ${task.database}: the target name ${task.target} is longer than ${POSTGRES_TARGET_MAX} characters (its loading and kept-aside copies must fit Postgres's identifiers)`);
        break;
      case 'clickhouseTable':
        check('clickhouse', task.database, task.target, scratch?.suffix);
        if (CLICKHOUSE_RESERVED.includes(task.target.toLowerCase())) problems.push(`ClickHouse database ${task.database}: ${task.target} is a system database and is never a target`);
        break;
      case 'bucket':
        check('buckets', task.bucket, task.target, scratch?.bucketSuffix);
        if (task.target === inventory.backupBucket) problems.push(`bucket ${task.bucket}: its target ${task.target} is the backup bucket (objectStore.backupBucket)`);
        if (!BUCKET_NAME.test(task.target)) problems.push(`bucket ${task.bucket}: the target name ${task.target} is not a valid bucket name (3-63 lowercase letters, digits, dots, hyphens)`);
        break;
      case 'kafka':
        if (scratch && task.suffix !== scratch.suffix) problems.push(`Kafka: a drill restores topics and groups under the suffix ${scratch.suffix}, not "${task.suffix}"`);
        break;
    }
  }
  return [...new Set(problems)];
}
