/**
 * npm run bench: backup and restore speed and worker memory against the raw tools, measured in
 * the same run.
 *
 * - Postgres: platformBackup of one database (pgbench data) against `pg_dump -Fc` to a local file.
 * - ClickHouse: platformBackup of one table (10 M rows) against
 *   `clickhouse-client --query "SELECT * FROM <table> FORMAT Native" > /dev/null`.
 * - Restore: the restore workflow of that Postgres dump (into a new database, pre-approved,
 *   verified) against plain `pg_restore` of the same dump from a local file; and its measured RTO.
 * - The worker's peak RSS (VmHWM of a fresh worker process per data size), at two data sizes.
 * - Rolling restart: kafkaRollingRestart of the three brokers against a plain loop that restarts
 *   the same brokers in the same order and polls `kafka-topics --under-replicated-partitions`.
 *
 * Each measurement runs BENCH_REPEATS times (default 2), alternating ballast and the raw tool;
 * the best of each is compared, since these machines are noisy.
 */
import { createWriteStream, readdirSync, readFileSync, rmSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { describeCommand, outputTail, runProcess, startStreamingProcess } from '../activities/common/process';
import { findPgTool } from '../activities/postgres/tools';
import type { LoadedConfig } from '../workers/config';
import { createConnections } from '../workers/connections';
import { temporalConnectionOptions } from '../workers/temporal';
import type { PlatformBackupInput, PlatformBackupResult } from '../workflows/platformBackup';
import type { RestoreReport } from '../contracts/restoreTypes';
import type { RollReport } from '../contracts/rollTypes';
import { runKafkaTool } from '../localStack';
import { writeDerivedConfig } from '../localStack/derivedConfig';
import { createApprovers } from '../localStack/approvers';
import { preApprovalText } from '../contracts/approvalTypes';
import { spawnWorker } from '../localStack/workerProcess';

const REPEATS = Number(process.env.BENCH_REPEATS ?? 2);
/** BENCH_ONLY=roll runs only the rolling-restart comparison. */
const ONLY = process.env.BENCH_ONLY;
const SIZES = [
  { label: 'small', pgbenchScale: 10, clickhouseRows: 2_000_000 },
  { label: 'large', pgbenchScale: 70, clickhouseRows: 10_000_000 },
];
const DB = 'bench';

function benchConfig(allowedSignersFile: string): LoadedConfig {
  return writeDerivedConfig('bench', (raw) => {
    raw.approvals = { ...raw.approvals, allowedSignersFile, approvers: ['bench-approver'] };
    raw.temporal = { ...raw.temporal, taskQueue: 'ballast-bench' };
    raw.postgres.databases = [DB];
    raw.clickhouse.databases = [{ name: DB, tables: ['events'] }];
    raw.backup = { ...raw.backup, schedule: { ...raw.backup?.schedule, enabled: false, scheduleId: 'ballast-bench-schedule' } };
    raw.drill = { ...raw.drill, schedule: { ...raw.drill?.schedule, enabled: false, scheduleId: 'ballast-bench-drill' } };
  });
}

/** Runs a program to its end; fails, quoting the end of its stderr, unless it exits 0. */
async function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  const result = await runProcess(command, args, { env });
  if (result.failed) {
    const how = result.signal ?? `exit ${result.exitCode}`;
    throw new Error(`${describeCommand([command, ...args])} failed (${how}): ${outputTail(result.stderr)}`);
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

async function preparePostgres(loaded: LoadedConfig, scale: number): Promise<number> {
  const connections = createConnections(loaded.config, loaded.path);
  const admin = new pg.Client(connections.postgres());
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB]);
    if (!exists.rowCount) await admin.query(`CREATE DATABASE ${DB}`);
  } finally {
    await admin.end();
  }
  const c = connections.postgres(DB);
  const pgbench = path.join(path.dirname((await findPgTool('pg_dump', 1)).path), 'pgbench');
  await run(pgbench, ['-i', '-q', '-s', String(scale), '-h', c.host, '-p', String(c.port), '-U', c.user, DB], {
    ...process.env,
    PGPASSWORD: c.password ?? '',
  });
  const db = new pg.Client(c);
  await db.connect();
  try {
    const { rows } = await db.query<{ size: string }>('SELECT pg_database_size(current_database()) AS size');
    return Number(rows[0]!.size);
  } finally {
    await db.end();
  }
}

async function prepareClickHouse(loaded: LoadedConfig, rows: number): Promise<void> {
  const client = createConnections(loaded.config, loaded.path).clickhouse(1_800_000);
  try {
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${DB}` });
    await client.command({ query: `DROP TABLE IF EXISTS ${DB}.events` });
    await client.command({
      query: `CREATE TABLE ${DB}.events (event_date Date, event_time DateTime, user_id UInt64, event_type String, amount Float64)
              ENGINE = MergeTree() PARTITION BY toYYYYMM(event_date) ORDER BY (event_date, user_id)`,
    });
    await client.command({
      query: `INSERT INTO ${DB}.events SELECT addMonths(toDate('2025-01-01'), number % 12) + (number % 28),
                toDateTime('2025-01-01 00:00:00') + number, number % 100000,
                arrayElement(['view','click','cart','purchase'], 1 + number % 4), (number % 10000) / 100
              FROM numbers(${rows})`,
    });
    await client.command({ query: `OPTIMIZE TABLE ${DB}.events FINAL` });
  } finally {
    await client.close();
  }
}

async function rawPgDump(loaded: LoadedConfig): Promise<number> {
  const c = createConnections(loaded.config, loaded.path).postgres(DB);
  const pgDump = await findPgTool('pg_dump', 15);
  const file = path.join(tmpdir(), 'ballast-bench.dump');
  const { ms } = await timed(() =>
    run(pgDump.path, ['-Fc', '-f', file, '-h', c.host, '-p', String(c.port), '-U', c.user, DB], { ...process.env, PGPASSWORD: c.password ?? '' }),
  );
  rmSync(file, { force: true });
  return ms;
}

async function rawClickHouseExport(loaded: LoadedConfig): Promise<number> {
  const { ms } = await timed(async () => {
    // Streaming with stdout ignored, as `> /dev/null` would: the export is far bigger than any
    // output buffer, and holding it would distort the timing.
    const child = await startStreamingProcess(
      'clickhouse-client export',
      'clickhouse-client',
      ['--host', '127.0.0.1', '--port', String(loaded.config.clickhouse.nativePort), '--query', `SELECT * FROM ${DB}.events FORMAT Native`],
      { stdin: 'ignore', stdout: 'ignore' },
    );
    await child.done;
  });
  return ms;
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The pid of the running program named `program` (its executable's base name). */
function programPid(program: string): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv0 = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[0]!;
      if (path.basename(argv0) === program) return Number(entry);
    } catch {
      // the process ended while the list was read
    }
  }
  throw new Error(`no running ${program} process`);
}

/** CPU seconds each of the given processes spends while `fn` runs. */
async function cpuDuring<T>(pids: Record<string, number>, fn: () => Promise<T>): Promise<{ value: T; cpu: Record<string, number> }> {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  const value = await fn();
  const cpu = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid) - before[name]!]));
  return { value, cpu };
}

const cpuText = (cpu: Record<string, number>) =>
  Object.entries(cpu)
    .map(([name, s]) => `${name} ${s.toFixed(2)} s`)
    .join(', ');

async function dropDatabase(loaded: LoadedConfig, name: string): Promise<void> {
  const admin = new pg.Client(createConnections(loaded.config, loaded.path).postgres());
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
}

/** Plain pg_restore of the backed-up dump from a local file into a fresh database. */
async function rawPgRestore(loaded: LoadedConfig, dumpKey: string): Promise<number> {
  const connections = createConnections(loaded.config, loaded.path);
  const file = path.join(tmpdir(), 'ballast-bench-restore.dump');
  const s3 = connections.s3(600_000);
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: loaded.config.objectStore.backupBucket, Key: dumpKey }));
    await pipeline(object.Body as NodeJS.ReadableStream, createWriteStream(file));
  } finally {
    s3.destroy();
  }
  const target = `${DB}_raw_restore`;
  await dropDatabase(loaded, target);
  const admin = new pg.Client(connections.postgres());
  await admin.connect();
  await admin.query(`CREATE DATABASE ${target} TEMPLATE template0`).finally(() => admin.end());
  const c = connections.postgres(target);
  const pgRestore = await findPgTool('pg_restore', 15);
  const { ms } = await timed(() =>
    run(pgRestore.path, ['--exit-on-error', '-h', c.host, '-p', String(c.port), '-U', c.user, '-d', target, file], { ...process.env, PGPASSWORD: c.password ?? '' }),
  );
  rmSync(file, { force: true });
  await dropDatabase(loaded, target);
  return ms;
}

/** Under-replicated partitions as Kafka's own tool lists them (one line each). */
async function urpByKafkaTool(loaded: LoadedConfig): Promise<number> {
  const bootstrap = loaded.config.kafka.brokers.map((b) => `${b.host}:${b.port}`).join(',');
  const out = await runKafkaTool('org.apache.kafka.tools.TopicCommand', ['--bootstrap-server', bootstrap, '--describe', '--under-replicated-partitions']);
  return out.split('\n').filter((l) => l.trim()).length;
}

/**
 * The plain loop an operator would script: for each broker, restart it, then poll Kafka's own
 * topic tool until no partition is under-replicated.
 */
async function shellLoopRoll(loaded: LoadedConfig, order: number[]): Promise<number> {
  const { ms } = await timed(async () => {
    for (const id of order) {
      await run('bash', ['scripts/stack', 'broker', 'restart', String(id)], { ...process.env, BALLAST_CONFIG: loaded.path });
      while ((await urpByKafkaTool(loaded)) > 0) await new Promise((r) => setTimeout(r, 1000));
    }
  });
  return ms;
}

async function benchRoll(loaded: LoadedConfig, client: Client, say: (line: string) => void): Promise<void> {
  console.log('\n[roll] rolling restart of the three brokers ...');
  const worker = await spawnWorker(loaded.path);
  try {
    const rollRuns: { ms: number; report: RollReport }[] = [];
    const loops: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const r = await timed(
        () =>
          client.workflow.execute('kafkaRollingRestart', {
            taskQueue: loaded.config.temporal.taskQueue,
            workflowId: `bench-roll-${Date.now()}`,
            args: [{}],
          }) as Promise<RollReport>,
      );
      rollRuns.push({ ms: r.ms, report: r.value });
      loops.push(await shellLoopRoll(loaded, r.value.order));
    }
    const best = rollRuns.reduce((a, b) => (b.ms < a.ms ? b : a));
    const lost = rollRuns.reduce((n, r) => n + (r.report.canary?.ackedMissing ?? 0), 0);
    const election = best.report.restarted.reduce((n, s) => n + (s.electionMs ?? 0), 0);
    say(`[roll] order ${best.report.order.join(', ')} (controller last); shell loop (restart + kafka-topics --under-replicated-partitions until empty): ${fmt(Math.min(...loops))}   kafkaRollingRestart (wall): ${fmt(best.ms)}   ratio ${(best.ms / Math.min(...loops)).toFixed(3)} (target <= 1.2)`);
    say(`[roll]   every run: kafkaRollingRestart ${rollRuns.map((r) => fmt(r.ms)).join(', ')}; shell loop ${loops.map(fmt).join(', ')}`);
    const steps = best.report.restarted.map((s) => `${s.brokerId}: safety ${fmt(s.safetyWaitMs)}, restart ${fmt(s.restartMs)}, replication ${fmt(s.replicationMs)}, election ${s.electionMs === undefined ? '-' : fmt(s.electionMs)}`);
    const inSteps = best.report.restarted.reduce((n, s) => n + Date.parse(s.finishedAt) - Date.parse(s.startedAt), 0);
    say(`[roll]   per broker: ${steps.join('; ')}; outside the broker steps (pre-flight, canary, report): ${fmt(best.ms - inSteps)}`);
    say(`[roll]   of which preferred leader elections: ${fmt(election)}; canary: ${best.report.canary?.acknowledged ?? 0} acknowledged, max produce latency ${best.report.canary?.maxLatencyMs ?? '-'} ms, ${best.report.canary?.retries ?? 0} retried, acknowledged messages lost over all runs: ${lost}`);
  } finally {
    await worker.stop();
  }
}

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  // The restore runs pre-approved the only way a restore can be: signed by a listed key.
  const approvers = await createApprovers(['bench-approver']);
  const loaded = benchConfig(approvers.allowedSignersFile);
  const connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
  const client = new Client({ connection, namespace: loaded.config.temporal.namespace });
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    console.log(line);
  };
  try {
    for (const size of ONLY === 'roll' ? [] : SIZES) {
      console.log(`\n[${size.label}] preparing: pgbench -i -s ${size.pgbenchScale}, ${size.clickhouseRows} ClickHouse rows ...`);
      const pgBytes = await preparePostgres(loaded, size.pgbenchScale);
      await prepareClickHouse(loaded, size.clickhouseRows);
      const worker = await spawnWorker(loaded.path);
      try {
        const backup = (input: PlatformBackupInput) =>
          timed(() =>
            client.workflow.execute('platformBackup', {
              taskQueue: loaded.config.temporal.taskQueue,
              workflowId: `bench-${size.label}-${Date.now()}`,
              args: [{ ...input, retention: false }],
            }) as Promise<PlatformBackupResult>,
          );
        const pieceMs = (r: PlatformBackupResult) => Math.max(...r.components.map((c) => Date.parse(c.finishedAt) - Date.parse(c.startedAt)));
        const pgPieces: number[] = [];
        const chPieces: number[] = [];
        const pgRuns: number[] = [];
        const pgRaw: number[] = [];
        const chRuns: number[] = [];
        const chRaw: number[] = [];
        // Where the ClickHouse time goes: the backup also uploads, so MinIO and the worker share
        // the machine's cores with ClickHouse; the raw export only has ClickHouse and its client.
        const processes = { 'clickhouse-server': programPid('clickhouse-server'), minio: programPid('minio'), worker: worker.child.pid! };
        let chRawCpu: Record<string, number> = {};
        let chRunCpu: Record<string, number> = {};
        let pgResult: PlatformBackupResult | undefined;
        for (let i = 0; i < REPEATS; i++) {
          pgRaw.push(await rawPgDump(loaded));
          const pgRun = await backup({ components: ['postgres'] });
          pgRuns.push(pgRun.ms);
          pgPieces.push(pieceMs(pgRun.value));
          pgResult = pgRun.value;
          const raw = await cpuDuring(processes, () => rawClickHouseExport(loaded));
          chRaw.push(raw.value);
          if (raw.value === Math.min(...chRaw)) chRawCpu = raw.cpu;
          const measured = await cpuDuring(processes, () => backup({ components: ['clickhouse'] }));
          const chRun = measured.value;
          if (chRun.ms <= Math.min(...chRuns)) chRunCpu = measured.cpu;
          chRuns.push(chRun.ms);
          chPieces.push(pieceMs(chRun.value));
        }
        // Restore of the same dump: the restore workflow (plan with sha256 check, pre-approved,
        // pg_restore streamed from the bucket, verification) against pg_restore from local disk.
        const restoreRuns: number[] = [];
        const restoreRaw: number[] = [];
        const rtoSeconds: number[] = [];
        const restoredName = `${DB}_restored`;
        for (let i = 0; i < REPEATS; i++) {
          restoreRaw.push(await rawPgRestore(loaded, `backups/${pgResult!.backupId}/postgres/${DB}.dump`));
          await dropDatabase(loaded, restoredName);
          const workflowId = `bench-restore-${size.label}-${Date.now()}`;
          const targets = { postgres: { [DB]: restoredName }, clickhouse: {}, kafkaSuffix: '', buckets: {} };
          const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
          const text = preApprovalText({ workflowId, backupId: pgResult!.backupId, components: ['postgres'], targets, expiresAt, reason: 'npm run bench' });
          const preApproved = { reason: 'npm run bench', expiresAt, signature: await approvers.sign('bench-approver', text) };
          const run = await timed(
            () =>
              client.workflow.execute('restore', {
                taskQueue: loaded.config.temporal.taskQueue,
                workflowId,
                args: [{ backupId: pgResult!.backupId, components: ['postgres'], targets, preApproved }],
              }) as Promise<RestoreReport>,
          );
          if (!run.value.verified) throw new Error('the benchmark restore did not verify');
          restoreRuns.push(run.ms);
          rtoSeconds.push(run.value.rto.measuredMinutes * 60);
          await dropDatabase(loaded, restoredName);
        }
        const rss = peakRssMb(worker.child.pid!);
        const best = (xs: number[]) => Math.min(...xs);
        const dumpBytes = pgResult!.totals.bytes;
        say(`[${size.label}] postgres ${DB}: ${(pgBytes / 1024 ** 3).toFixed(2)} GiB on disk, dump ${(dumpBytes / 1024 ** 2).toFixed(0)} MiB`);
        say(`[${size.label}]   pg_dump -Fc to a local file: ${fmt(best(pgRaw))}   platformBackup (postgres only, wall): ${fmt(best(pgRuns))}   ratio ${(best(pgRuns) / best(pgRaw)).toFixed(3)} (target <= 1.15)`);
        say(`[${size.label}]   of which the dump piece itself: ${fmt(best(pgPieces))}   ratio ${(best(pgPieces) / best(pgRaw)).toFixed(3)}`);
        say(`[${size.label}] clickhouse ${DB}.events: ${size.clickhouseRows} rows`);
        say(`[${size.label}]   clickhouse-client SELECT * FORMAT Native > /dev/null: ${fmt(best(chRaw))}   platformBackup (clickhouse only, wall): ${fmt(best(chRuns))}   ratio ${(best(chRuns) / best(chRaw)).toFixed(3)} (target <= 1.25)`);
        say(`[${size.label}]   of which the table piece itself: ${fmt(best(chPieces))}   ratio ${(best(chPieces) / best(chRaw)).toFixed(3)}`);
        say(`[${size.label}]   CPU during the raw export: ${cpuText(chRawCpu)} (plus clickhouse-client)`);
        say(`[${size.label}]   CPU during the backup: ${cpuText(chRunCpu)} (on ${cpus().length} cores)`);
        say(`[${size.label}] restore of the ${(dumpBytes / 1024 ** 2).toFixed(0)} MiB dump: pg_restore from a local file: ${fmt(best(restoreRaw))}   restore workflow (wall): ${fmt(best(restoreRuns))}   ratio ${(best(restoreRuns) / best(restoreRaw)).toFixed(3)} (target <= 1.15)`);
        say(`[${size.label}]   measured RTO (incident = workflow start, to verified): ${Math.min(...rtoSeconds).toFixed(1)} s`);
        say(`[${size.label}] worker peak RSS (VmHWM): ${rss.toFixed(0)} MB (target < 300 MB)`);
      } finally {
        await worker.stop();
      }
    }
    if (!ONLY || ONLY === 'roll') await benchRoll(loaded, client, say);
  } finally {
    await connection.close();
  }
  console.log(`\nsummary (best of ${REPEATS}):\n${lines.join('\n')}`);
}

main().catch((err) => {
  console.error('bench failed:', err);
  process.exit(1);
});
