/**
 * npm run bench: the issue-14 targets, each with its figure, its limit and PASS/FAIL, against
 * the raw tools measured in the same run (rules and limits: scripts/benchmark/targets.ts).
 *
 * - Postgres: platformBackup of one database (pgbench tables plus ~1 KiB rows of random base64)
 *   against `pg_dump -Fc` to a local file; the fixed cost per run from an almost empty database
 *   (its backup's wall time minus its pg_dump's).
 * - ClickHouse: platformBackup of one table (5, 10 and 50 M rows) against the raw export: the
 *   backup's own per-partition query (compress=1, Native) by curl into /dev/null.
 * - Restore: the restore workflow of the Postgres dump (into a new database, pre-approved,
 *   verified) against plain `pg_restore` of the same dump from a local file; and its measured RTO.
 * - The worker (a process of its own, fresh per size, V8 defaults): its peak RSS (VmHWM) at each
 *   size, and its own CPU seconds (utime + stime, not its pg_dump's) per GB of pieces written.
 * - Rolling restart: kafkaRollingRestart of the three brokers against a plain restart loop.
 *
 * BENCH_ONLY=data|roll runs one part; BENCH_SIZES=small,medium,large picks sizes; BENCH_REPEATS
 * (default 2) sets how often each measurement runs, ballast and the raw tool alternating; the best
 * of each is compared, since these machines are noisy. Datasets are kept between runs; the
 * backups the bench made are deleted at the end.
 */
import { cpus } from 'node:os';
import { DeleteObjectsCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import type { LoadedConfig } from '../workers/config';
import { createConnections } from '../workers/connections';
import { temporalConnectionOptions } from '../workers/temporal';
import type { PlatformBackupInput, PlatformBackupResult } from '../workflows/platformBackup';
import type { RestoreReport } from '../contracts/restoreTypes';
import { writeDerivedConfig } from '../localStack/derivedConfig';
import { createApprovers } from '../localStack/approvers';
import { preApprovalText } from '../contracts/approvalTypes';
import { spawnWorker } from '../localStack/workerProcess';
import { backupPrefix, listKeys } from '../activities/storage/backupObjects';
import { BENCH_TABLE, prepareClickHouse, rawClickHouseExport } from './benchmark/clickhouseData';
import { dropDatabase, prepareTinyDatabase, preparePostgres, rawPgDump, rawPgRestore } from './benchmark/postgresData';
import { cpuDuring, cpuSeconds, cpuText, peakRssMb, programPid, rssMb } from './benchmark/procStats';
import { benchRoll } from './benchmark/roll';
import { benchCompaction, COMPACTION_DATABASE, COMPACTION_TABLE } from './benchmark/compactionData';
import { benchDemoReset } from './benchmark/demoReset';
import { timed } from './benchmark/run';
import { SIZES, TINY_DATABASE, benchDatabase, selectParts, selectSizes, type BenchSize } from './benchmark/sizes';
import {
  LIMITS,
  atMost,
  cpuPerGb,
  flatMemory,
  fmtMb,
  fmtRatio,
  fmtSeconds,
  notMeasured,
  postgresRatio,
  ratio,
  verdictTable,
  type Verdict,
} from './benchmark/targets';

const REPEATS = Number(process.env.BENCH_REPEATS ?? 2);
/**
 * Runs that are cheap and short enough for the machine's noise to matter: the tiny database's
 * fixed cost (a difference of two small figures) and compaction (about a second each side).
 */
const TINY_REPEATS = Math.max(REPEATS, 3);
const PARTS = selectParts(process.env.BENCH_ONLY);
const SIZES_RUN = selectSizes(process.env.BENCH_SIZES);
/**
 * BENCH_PROFILE=<dir>: each worker writes a V8 CPU profile there when it stops (open it in Chrome
 * DevTools), to see where the worker's CPU per GB goes.
 */
const WORKER_OPTIONS: { command?: [string, ...string[]] } = process.env.BENCH_PROFILE
  ? { command: ['node', '--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`, '--import', 'tsx', 'workers/main.ts'] }
  : {};

function benchConfig(allowedSignersFile: string): LoadedConfig {
  return writeDerivedConfig('bench', (raw) => {
    raw.approvals = { ...raw.approvals, allowedSignersFile, approvers: ['bench-approver'] };
    raw.temporal = { ...raw.temporal, taskQueue: 'ballast-bench' };
    raw.postgres.databases = [TINY_DATABASE, ...SIZES_RUN.map(benchDatabase)];
    raw.clickhouse.databases = SIZES_RUN.map((s) => ({ name: benchDatabase(s), tables: [BENCH_TABLE] }));
    raw.backup = { ...raw.backup, schedule: { ...raw.backup?.schedule, enabled: false, scheduleId: 'ballast-bench-schedule' } };
    raw.drill = { ...raw.drill, schedule: { ...raw.drill?.schedule, enabled: false, scheduleId: 'ballast-bench-drill' } };
  });
}

/** compaction of the bench's table alone, in a window that is always open. */
function compactionConfig(): LoadedConfig {
  return writeDerivedConfig('bench-compaction', (raw) => {
    raw.temporal = { ...raw.temporal, taskQueue: 'ballast-bench-compaction' };
    raw.clickhouse.databases = [{ name: COMPACTION_DATABASE, tables: [COMPACTION_TABLE] }];
    raw.backup = { ...raw.backup, schedule: { ...raw.backup?.schedule, enabled: false, scheduleId: 'ballast-bench-compaction-schedule' } };
    raw.drill = { ...raw.drill, schedule: { ...raw.drill?.schedule, enabled: false, scheduleId: 'ballast-bench-compaction-drill' } };
    raw.maintenance = { ...raw.maintenance, window: { start: '00:00', durationMinutes: 24 * 60 }, schedule: { enabled: false, scheduleId: 'ballast-bench-maintenance' } };
    raw.demoReset = { ...raw.demoReset, schedule: undefined };
  });
}

const best = (xs: number[]) => Math.min(...xs);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
/** The longest piece of a run: with one database or table backed up, that piece's own time. */
const pieceMs = (r: PlatformBackupResult) => Math.max(...r.components.map((c) => Date.parse(c.finishedAt) - Date.parse(c.startedAt)));
const secondsPerGb = (s: number) => `${s.toFixed(2)} s/GB`;

/** What one size measured; each list holds every run, ballast's and the raw tool's alternating. */
interface SizeFigures {
  size: BenchSize;
  pg: { raw: number[]; backup: number[]; piece: number[]; dumpBytes: number; workerCpu: number[]; bytes: number[] };
  ch: { raw: number[]; backup: number[]; piece: number[]; workerCpu: number[]; bytes: number[] };
  restore: { raw: number[]; workflow: number[]; rtoSeconds: number[] };
  peakMb: number;
  startMb: number;
}

class Bench {
  readonly backupIds: string[] = [];
  readonly restoreWorkflowIds: string[] = [];

  constructor(
    readonly loaded: LoadedConfig,
    readonly client: Client,
    readonly approvers: Awaited<ReturnType<typeof createApprovers>>,
  ) {}

  async backup(label: string, input: PlatformBackupInput): Promise<{ ms: number; value: PlatformBackupResult }> {
    const run = await timed(
      () =>
        this.client.workflow.execute('platformBackup', {
          taskQueue: this.loaded.config.temporal.taskQueue,
          workflowId: `bench-${label}-${Date.now()}`,
          args: [{ ...input, retention: false }],
        }) as Promise<PlatformBackupResult>,
    );
    this.backupIds.push(run.value.backupId);
    return run;
  }

  /** The restore workflow of one database's dump into `restoredName`, pre-approved and verified. */
  async restore(label: string, backupId: string, db: string, restoredName: string): Promise<{ ms: number; value: RestoreReport }> {
    const workflowId = `bench-restore-${label}-${Date.now()}`;
    this.restoreWorkflowIds.push(workflowId);
    const targets = { postgres: { [db]: restoredName }, clickhouse: {}, kafkaSuffix: '', buckets: {} };
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    const text = preApprovalText({ workflowId, backupId, components: ['postgres'], targets, expiresAt, reason: 'npm run bench' });
    const preApproved = { reason: 'npm run bench', expiresAt, signature: await this.approvers.sign('bench-approver', text) };
    const run = await timed(
      () =>
        this.client.workflow.execute('restore', {
          taskQueue: this.loaded.config.temporal.taskQueue,
          workflowId,
          args: [{ backupId, components: ['postgres'], targets, preApproved }],
        }) as Promise<RestoreReport>,
    );
    if (!run.value.verified) throw new Error('the benchmark restore did not verify');
    return run;
  }

  /** A backup of the tiny database, to run a fresh worker's first workflow before measuring. */
  async warmUp(): Promise<void> {
    await this.backup('warmup', { components: ['postgres'], postgresDatabases: [TINY_DATABASE] });
  }

  /** Fixed cost per Postgres backup run: an almost empty database's backup minus its pg_dump. */
  async fixedCost(say: (line: string) => void): Promise<number> {
    const worker = await spawnWorker(this.loaded.path, WORKER_OPTIONS);
    try {
      // The first run of a fresh worker loads the workflow code and opens connections: not per run.
      await this.warmUp();
      const raw: number[] = [];
      const runs: { ms: number; value: PlatformBackupResult }[] = [];
      for (let i = 0; i < TINY_REPEATS; i++) {
        raw.push(await rawPgDump(this.loaded, TINY_DATABASE));
        runs.push(await this.backup('tiny', { components: ['postgres'], postgresDatabases: [TINY_DATABASE] }));
      }
      const fastest = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
      const fixed = fastest.ms - best(raw);
      say(`[fixed] ${TINY_DATABASE} (100 rows): pg_dump -Fc ${fmtSeconds(best(raw))}   platformBackup (wall) ${fmtSeconds(fastest.ms)}   fixed cost per run ${fixed.toFixed(0)} ms`);
      say(`[fixed]   every run: platformBackup ${runs.map((r) => fmtSeconds(r.ms)).join(', ')}; pg_dump ${raw.map(fmtSeconds).join(', ')}`);
      const phases = Object.entries(fastest.value.phaseDurationsMs).map(([phase, ms]) => `${phase} ${ms} ms`);
      say(`[fixed]   the fastest run's phases (workflow clock): ${phases.join(', ')}; its piece ${pieceMs(fastest.value)} ms`);
      return fixed;
    } finally {
      await worker.stop();
    }
  }

  async measureSize(size: BenchSize, say: (line: string) => void): Promise<SizeFigures> {
    const db = benchDatabase(size);
    const tag = `[${size.label}]`;
    console.log(`\n${tag} measuring ...`);
    const worker = await spawnWorker(this.loaded.path, WORKER_OPTIONS);
    const workerPid = worker.child.pid!;
    const startMb = rssMb(workerPid);
    try {
      // Loading the workflow code and opening connections is the first run's: not counted per GB.
      await this.warmUp();
      const f: SizeFigures = {
        size,
        pg: { raw: [], backup: [], piece: [], dumpBytes: 0, workerCpu: [], bytes: [] },
        ch: { raw: [], backup: [], piece: [], workerCpu: [], bytes: [] },
        restore: { raw: [], workflow: [], rtoSeconds: [] },
        peakMb: 0,
        startMb,
      };
      // Where the ClickHouse time goes: the backup also uploads, so MinIO and the worker share
      // the machine's cores with ClickHouse; the raw export only has ClickHouse and curl.
      const processes = () => ({ 'clickhouse-server': programPid('clickhouse-server'), minio: programPid('minio'), worker: workerPid });
      let chRawCpu: Record<string, number> = {};
      let chRunCpu: Record<string, number> = {};
      let lastPgBackup: PlatformBackupResult | undefined;
      for (let i = 0; i < REPEATS; i++) {
        f.pg.raw.push(await rawPgDump(this.loaded, db));
        const pgCpu = cpuSeconds(workerPid);
        const pgRun = await this.backup(size.label, { components: ['postgres'], postgresDatabases: [db] });
        f.pg.workerCpu.push(cpuSeconds(workerPid) - pgCpu);
        f.pg.bytes.push(pgRun.value.totals.bytes);
        f.pg.backup.push(pgRun.ms);
        f.pg.piece.push(pieceMs(pgRun.value));
        f.pg.dumpBytes = pgRun.value.totals.bytes;
        lastPgBackup = pgRun.value;

        const raw = await cpuDuring(processes, () => rawClickHouseExport(this.loaded, db));
        f.ch.raw.push(raw.value);
        if (raw.value === best(f.ch.raw)) chRawCpu = raw.cpu;
        const measured = await cpuDuring(processes, () => this.backup(size.label, { components: ['clickhouse'], clickhouseTables: [`${db}.${BENCH_TABLE}`] }));
        const chRun = measured.value;
        f.ch.backup.push(chRun.ms);
        if (chRun.ms === best(f.ch.backup)) chRunCpu = measured.cpu;
        f.ch.workerCpu.push(measured.cpu.worker!);
        f.ch.bytes.push(chRun.value.totals.bytes);
        f.ch.piece.push(pieceMs(chRun.value));
      }
      const restoredName = `${db}_restored`;
      for (let i = 0; i < REPEATS; i++) {
        f.restore.raw.push(await rawPgRestore(this.loaded, `${backupPrefix(lastPgBackup!.backupId)}postgres/${db}.dump`, `${db}_raw_restore`));
        await dropDatabase(this.loaded, restoredName);
        const run = await this.restore(size.label, lastPgBackup!.backupId, db, restoredName);
        f.restore.workflow.push(run.ms);
        f.restore.rtoSeconds.push(run.value.rto.measuredMinutes * 60);
        await dropDatabase(this.loaded, restoredName);
      }
      f.peakMb = peakRssMb(workerPid);

      const pgCpuPerGb = cpuPerGb(sum(f.pg.workerCpu), sum(f.pg.bytes));
      const chCpuPerGb = cpuPerGb(sum(f.ch.workerCpu), sum(f.ch.bytes));
      say(`${tag} postgres ${db}: pgbench scale ${size.pgbenchScale} + ${size.pgTextRows} text rows; dump ${fmtMb(f.pg.dumpBytes)}`);
      say(`${tag}   pg_dump -Fc to a local file: ${fmtSeconds(best(f.pg.raw))}   platformBackup (postgres only, wall): ${fmtSeconds(best(f.pg.backup))}   ratio ${fmtRatio(ratio(best(f.pg.backup), best(f.pg.raw)))}`);
      say(`${tag}   of which the dump piece itself: ${fmtSeconds(best(f.pg.piece))}   ratio ${fmtRatio(ratio(best(f.pg.piece), best(f.pg.raw)))}; outside the piece ${fmtSeconds(best(f.pg.backup) - best(f.pg.piece))}`);
      say(`${tag}   worker CPU: ${sum(f.pg.workerCpu).toFixed(2)} s for ${fmtMb(sum(f.pg.bytes))} over ${REPEATS} backups = ${secondsPerGb(pgCpuPerGb)}`);
      say(`${tag} clickhouse ${db}.${BENCH_TABLE}: ${size.clickhouseRows} rows; export ${fmtMb(f.ch.bytes.at(-1)!)}`);
      say(`${tag}   raw export (per partition, compress=1, curl > /dev/null): ${fmtSeconds(best(f.ch.raw))}   platformBackup (clickhouse only, wall): ${fmtSeconds(best(f.ch.backup))}   ratio ${fmtRatio(ratio(best(f.ch.backup), best(f.ch.raw)))}`);
      say(`${tag}   of which the table piece itself: ${fmtSeconds(best(f.ch.piece))}   ratio ${fmtRatio(ratio(best(f.ch.piece), best(f.ch.raw)))}`);
      say(`${tag}   CPU during the raw export: ${cpuText(chRawCpu)} (plus curl)`);
      say(`${tag}   CPU during the backup: ${cpuText(chRunCpu)} (on ${cpus().length} cores)`);
      say(`${tag}   worker CPU: ${sum(f.ch.workerCpu).toFixed(2)} s for ${fmtMb(sum(f.ch.bytes))} over ${REPEATS} backups = ${secondsPerGb(chCpuPerGb)}`);
      say(`${tag} restore of the ${fmtMb(f.pg.dumpBytes)} dump: pg_restore from a local file: ${fmtSeconds(best(f.restore.raw))}   restore workflow (wall): ${fmtSeconds(best(f.restore.workflow))}   ratio ${fmtRatio(ratio(best(f.restore.workflow), best(f.restore.raw)))}`);
      say(`${tag}   measured RTO (incident = workflow start, to verified): ${best(f.restore.rtoSeconds).toFixed(1)} s`);
      say(`${tag} worker RSS: ${startMb.toFixed(0)} MB once polling, peak (VmHWM) ${f.peakMb.toFixed(0)} MB`);
      return f;
    } finally {
      await worker.stop();
    }
  }

  /** Deletes every backup the bench made and the reports of its restores. */
  async cleanUp(): Promise<void> {
    const bucket = this.loaded.config.objectStore.backupBucket;
    const s3 = createConnections(this.loaded.config, this.loaded.path).s3(600_000);
    try {
      const keys = [
        ...(await Promise.all(this.backupIds.map((id) => listKeys(s3, bucket, backupPrefix(id))))).flat(),
        ...(await listKeys(s3, bucket, 'reports/restores/')).filter((k) => this.restoreWorkflowIds.some((id) => k.endsWith(`-${id}.json`))),
      ];
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        const result = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
        if (result.Errors?.length) throw new Error(`could not delete ${result.Errors.length} bench objects, e.g. ${result.Errors[0]!.Key}: ${result.Errors[0]!.Message}`);
      }
      console.log(`\ndeleted the bench's ${this.backupIds.length} backups and ${this.restoreWorkflowIds.length} restore reports (${keys.length} objects)`);
    } finally {
      s3.destroy();
    }
  }
}

/** Makes (or keeps from an earlier run) every selected size's data, and says how long that took. */
async function prepareData(loaded: LoadedConfig, say: (line: string) => void): Promise<void> {
  for (const size of SIZES_RUN) {
    const db = benchDatabase(size);
    console.log(`\n[${size.label}] data: postgres ${db} (pgbench -s ${size.pgbenchScale} + ${size.pgTextRows} text rows), clickhouse ${db}.${BENCH_TABLE} (${size.clickhouseRows} rows) ...`);
    const pgData = await preparePostgres(loaded, db, size);
    const chData = await prepareClickHouse(loaded, db, size.clickhouseRows);
    const made = (ms: number | undefined) => (ms === undefined ? 'kept from an earlier run' : `generated in ${fmtSeconds(ms)}`);
    say(`[${size.label}] data: postgres ${made(pgData.generatedMs)} (${fmtMb(pgData.diskBytes)} on disk); clickhouse ${made(chData.generatedMs)}`);
  }
}

/** The targets, judged on what this run measured. */
function judge(fixedMs: number | undefined, sizes: SizeFigures[], roll: Verdict | undefined, compaction: Verdict | undefined, reset: Verdict | undefined): Verdict[] {
  const verdicts: Verdict[] = [];
  const largest = sizes.at(-1);
  const smallest = SIZES_RUN[0];
  verdicts.push(
    flatMemory(sizes.map((f) => ({ label: f.size.label, scale: f.size.clickhouseRows / (smallest?.clickhouseRows ?? 1), peakMb: f.peakMb }))),
  );
  if (largest) {
    const at = `(${largest.size.label})`;
    verdicts.push(atMost(`worker CPU per GB, postgres ${at}`, cpuPerGb(sum(largest.pg.workerCpu), sum(largest.pg.bytes)), LIMITS.cpuSecondsPerGb, secondsPerGb));
    verdicts.push(atMost(`worker CPU per GB, clickhouse ${at}`, cpuPerGb(sum(largest.ch.workerCpu), sum(largest.ch.bytes)), LIMITS.cpuSecondsPerGb, secondsPerGb));
    verdicts.push({ ...postgresRatio(best(largest.pg.backup), best(largest.pg.raw), largest.pg.dumpBytes), target: `postgres backup vs pg_dump -Fc ${at}` });
  } else {
    verdicts.push(notMeasured('worker CPU per GB', `<= ${secondsPerGb(LIMITS.cpuSecondsPerGb)}`, 'no data size run'));
    verdicts.push(notMeasured('postgres backup vs pg_dump -Fc', `<= ${fmtRatio(LIMITS.postgresBackupRatio)}`, 'no data size run'));
  }
  verdicts.push(
    fixedMs === undefined
      ? notMeasured('postgres fixed cost per run', `<= ${LIMITS.postgresFixedCostMs} ms`, 'BENCH_ONLY=roll')
      : atMost('postgres fixed cost per run', fixedMs, LIMITS.postgresFixedCostMs, (ms) => `${ms.toFixed(0)} ms`),
  );
  const chJudged = sizes.filter((f) => f.size.clickhouseRows >= LIMITS.clickhouseMinRows);
  for (const f of chJudged) {
    verdicts.push(atMost(`clickhouse backup vs raw export (${f.size.clickhouseRows / 1e6} M rows)`, ratio(best(f.ch.backup), best(f.ch.raw)), LIMITS.clickhouseBackupRatio, fmtRatio));
  }
  if (chJudged.length === 0) verdicts.push(notMeasured('clickhouse backup vs raw export', `<= ${fmtRatio(LIMITS.clickhouseBackupRatio)}`, 'judged on 10 M and 50 M rows (medium, large)'));
  verdicts.push(
    largest
      ? atMost(`restore vs pg_restore (${largest.size.label})`, ratio(best(largest.restore.workflow), best(largest.restore.raw)), LIMITS.restoreRatio, fmtRatio)
      : notMeasured('restore vs pg_restore', `<= ${fmtRatio(LIMITS.restoreRatio)}`, 'no data size run'),
  );
  verdicts.push(roll ?? notMeasured('rolling restart vs restart loop', `<= ${fmtRatio(LIMITS.rollRatio)}`, 'not in BENCH_ONLY'));
  verdicts.push(compaction ?? notMeasured('compaction vs OPTIMIZE FINAL loop', `<= ${fmtRatio(LIMITS.compactionRatio)}`, 'not in BENCH_ONLY'));
  verdicts.push(reset ?? notMeasured('demoReset vs raw reset script', `<= ${fmtRatio(LIMITS.demoResetRatio)}`, 'not in BENCH_ONLY'));
  return verdicts;
}

async function main(): Promise<void> {
  // The restore runs pre-approved the only way a restore can be: signed by a listed key.
  const approvers = await createApprovers(['bench-approver']);
  const loaded = benchConfig(approvers.allowedSignersFile);
  const connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
  const client = new Client({ connection, namespace: loaded.config.temporal.namespace });
  const bench = new Bench(loaded, client, approvers);
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    console.log(line);
  };
  const sizes: SizeFigures[] = [];
  let fixedMs: number | undefined;
  let roll: Verdict | undefined;
  let compaction: Verdict | undefined;
  let reset: Verdict | undefined;
  const started = Date.now();
  try {
    if (PARTS.includes('data')) {
      await prepareData(loaded, say);
      await prepareTinyDatabase(loaded, TINY_DATABASE);
      fixedMs = await bench.fixedCost(say);
      for (const size of SIZES_RUN) sizes.push(await bench.measureSize(size, say));
    }
    if (PARTS.includes('roll')) roll = await benchRoll(loaded, client, REPEATS, say);
    if (PARTS.includes('compaction')) compaction = await benchCompaction(compactionConfig(), client, TINY_REPEATS, say);
    if (PARTS.includes('reset')) reset = await benchDemoReset(client, REPEATS, say);
  } finally {
    await bench.cleanUp().catch((err: unknown) => console.error('bench: could not delete its backups:', err));
    await connection.close();
  }
  const { lines: table, allPassed } = verdictTable(judge(fixedMs, sizes, roll, compaction, reset));
  const sizesText = SIZES_RUN.map((s) => s.label).join(', ');
  console.log(`\nsummary (best of ${REPEATS}; sizes ${sizesText || '-'} of ${SIZES.map((s) => s.label).join(', ')}; ${fmtSeconds(Date.now() - started)} in all):\n${lines.join('\n')}`);
  console.log(`\ntargets (issues 14, 15, 16):\n${table.join('\n')}`);
  if (!allPassed) process.exitCode = 1;
}

main().catch((err) => {
  console.error('bench failed:', err);
  process.exit(1);
});
