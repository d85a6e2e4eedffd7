import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import type { ApprovalAnswer } from '../../contracts/approvalTypes';
import type { MaintenanceReport } from '../../contracts/maintenanceTypes';
import type { RestoreReport } from '../../contracts/restoreTypes';
import { writeDerivedConfig, type RawConfig } from '../../localStack/derivedConfig';
import { createApprovers, type Approvers } from '../../localStack/approvers';
import { createConnections, type Connections } from '../../workers/connections';
import type { LoadedConfig } from '../../workers/config';
import { approveUpdate, rejectUpdate } from '../../workflows/approval';
import { compactionStatusQuery, type CompactionInput } from '../../workflows/compaction';
import { restoreStatusQuery } from '../../workflows/restore';
import { pauseSignal, resumeSignal } from '../../workflows/runControls';
import { assertServerVersion, clickhouseServers } from '../helpers/clickhouseServers';
import { eventually, startStackWorker, type StackWorker } from '../helpers/stackWorker';
import { ConfigResourceTypes } from 'kafkajs';
import { temporalConnectionOptions } from '../../workers/temporal';
import { spawnWorker, type WorkerProcess } from '../helpers/workerProcess';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { listAllKeys, readManifest } from '../helpers/backupBucket';
import { waitForTopicsOnEveryBroker } from '../../activities/kafka/protocolRequests';

// compaction on the real stack: every table, database, topic and prefix it makes is named cmp_/cmp-
// and dropped afterwards. A window that contains the test's now (opened an hour ago) lets steps run.

const id = randomUUID().slice(0, 8);
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
const MERGE_MAX_PARTS = 2;

/** The partition ids retention drops of `retained` (kept: three months). */
const oldIds = () => [5, 4, 3].map((back) => monthStart(back).slice(0, 7).replace('-', ''));

/** The first day of the month `back` months before the test's now, as YYYY-MM-DD. */
function monthStart(back: number): string {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1)).toISOString().slice(0, 10);
}

function maintenanceConfig(name: string, database: string, extra: (raw: RawConfig) => void, allowedSignersFile: string): LoadedConfig {
  return writeDerivedConfig(name, (raw) => {
    raw.clickhouse = { ...raw.clickhouse!, databases: [{ name: database }] };
    raw.approvals = { ...raw.approvals, allowedSignersFile, approvers: ['bob'], fourEyes: true };
    raw.maintenance = {
      window: { start: hhmm(Date.now() - 3_600_000), durationMinutes: 180 },
      schedule: { enabled: false, scheduleId: `cmp-schedule-${id}` },
      clickhouse: {
        merge: { maxParts: MERGE_MAX_PARTS, final: true, timeoutSeconds: 600 },
        tables: [{ database, table: 'retained', retention: { keepMonths: 3 }, merge: { enabled: false } }],
      },
      busyWaitSeconds: 5,
      backupBeforeDrop: true,
    };
    extra(raw);
  });
}

interface PartRow {
  partition_id: string;
  name: string;
  rows: string;
}

async function parts(ch: ClickHouseClient, database: string, table: string): Promise<PartRow[]> {
  const result = await ch.query({
    query: `SELECT partition_id, name, toString(rows) AS rows FROM system.parts WHERE database = '${database}' AND table = '${table}' AND active ORDER BY name`,
    format: 'JSONEachRow',
  });
  return result.json<PartRow>();
}

interface PartitionContent {
  p: string;
  n: string;
  h: string;
}

/** Rows and a checksum of every row's values, per partition (the partition key is toYYYYMM(d)). */
async function content(ch: ClickHouseClient, database: string, table: string): Promise<PartitionContent[]> {
  const result = await ch.query({
    query: `SELECT toString(toYYYYMM(d)) AS p, toString(count()) AS n, toString(sum(cityHash64(d, id, v))) AS h FROM ${database}.${table} GROUP BY p ORDER BY p`,
    format: 'JSONEachRow',
  });
  return result.json<PartitionContent>();
}

function byPartition(rows: PartRow[]): Map<string, { parts: number; rows: number; names: string[] }> {
  const out = new Map<string, { parts: number; rows: number; names: string[] }>();
  for (const r of rows) {
    const p = out.get(r.partition_id) ?? { parts: 0, rows: 0, names: [] };
    p.parts++;
    p.rows += Number(r.rows);
    p.names.push(r.name);
    out.set(r.partition_id, p);
  }
  return out;
}

describe('compaction on the real stack', () => {
  let approvers: Approvers;
  before(async () => {
    approvers = await createApprovers(['alice', 'bob']);
  });

  /** Starts a run as alice; returns the handle. */
  const start = (w: StackWorker, input: CompactionInput) => w.client.workflow.start('compaction', { taskQueue: w.taskQueue, workflowId: `cmp-${id}-${randomUUID().slice(0, 8)}`, args: [input] });
  /** Waits for the approval ask; bob signs `decision` over the plan hash the run shows. */
  const answer = async (handle: WorkflowHandle, decision: 'approve' | 'reject'): Promise<{ actions: string[]; hash: string }> => {
    const status = await eventually('the approval ask', async () => {
      const s = await handle.query(compactionStatusQuery);
      return s.approval ? s : undefined;
    }, 120_000, 200);
    const runId = (await handle.describe()).runId;
    const signed: ApprovalAnswer = await approvers.signAnswer('bob', { workflowId: handle.workflowId, runId, planHash: status.approval!.plan.hash, decision, reason: `cmp test ${decision}` });
    await handle.executeUpdate(decision === 'approve' ? approveUpdate : rejectUpdate, { args: [signed] });
    return { actions: status.approval!.plan.actions, hash: status.approval!.plan.hash };
  };

  for (const server of clickhouseServers()) {
    describe(`ClickHouse ${server.version}`, () => {
      const database = `cmp_${id}_${server.version.replace('.', '_')}`;
      let worker: StackWorker;
      let connections: Connections;
      let ch: ClickHouseClient;

      before(async () => {
        const base = server.load();
        const loaded = maintenanceConfig(`cmp-${id}-${server.version}`, database, (raw) => {
          raw.clickhouse = { ...raw.clickhouse!, url: base.config.clickhouse.url, nativePort: base.config.clickhouse.nativePort, databases: [{ name: database }] };
        }, approvers.allowedSignersFile);
        connections = createConnections(loaded.config, loaded.path);
        ch = connections.clickhouse();
        await assertServerVersion(ch, server);
        await ch.command({ query: `CREATE DATABASE ${database}` });
        // Background merges off (no part may exceed 1 byte): only compaction's OPTIMIZE merges,
        // which is what an operator's OPTIMIZE ... FINAL is not held back by either.
        for (const table of ['merged', 'retained']) {
          await ch.command({
            query: `CREATE TABLE ${database}.${table} (d Date, id UInt64, v String) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY (d, id) SETTINGS index_granularity = 8192, max_bytes_to_merge_at_max_space_in_pool = 1`,
          });
        }
        // merged: three old months with five inserts each (five parts), the current month with one.
        for (const back of [3, 2, 1]) {
          for (let i = 0; i < 5; i++) {
            await ch.command({ query: `INSERT INTO ${database}.merged SELECT toDate('${monthStart(back)}') + number % 25, number + ${i * 1000}, 'x' FROM system.numbers LIMIT ${300 + back * 10 + i}` });
          }
        }
        await ch.command({ query: `INSERT INTO ${database}.merged SELECT toDate('${monthStart(0)}'), number, 'new' FROM system.numbers LIMIT 50` });
        // retained: six monthly partitions, the current one and five before it.
        for (const back of [5, 4, 3, 2, 1, 0]) {
          await ch.command({ query: `INSERT INTO ${database}.retained SELECT toDate('${monthStart(back)}') + number % 20, number, 'r' FROM system.numbers LIMIT ${100 + back}` });
        }
        worker = await startStackWorker(loaded);
      });

      after(async () => {
        await worker?.close();
        await ch?.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
        await ch?.close();
      });

      it('a dry run returns the plan and leaves system.parts identical', async () => {
        const before = [...(await parts(ch, database, 'merged')), ...(await parts(ch, database, 'retained'))];
        const report = (await (await start(worker, { dryRun: true, systems: ['clickhouse'] })).result()) as MaintenanceReport;
        const after = [...(await parts(ch, database, 'merged')), ...(await parts(ch, database, 'retained'))];
        assert.equal(report.outcome, 'dry run');
        assert.deepEqual(after, before, 'system.parts unchanged');
        assert.deepEqual(report.steps, []);
        const merges = report.plan.steps.filter((s) => s.kind === 'merge');
        assert.equal(merges.length, 3, 'the three old partitions of merged');
        const newest = report.plan.clickhouse.partitions.find((p) => p.table === 'merged' && p.partitionId === monthStart(0).slice(0, 7).replace('-', ''))!;
        assert.equal(newest.action, 'none');
        assert.match(newest.reason, /newest partition/);
        assert.match(report.plan.hash, /^sha256:[0-9a-f]{64}$/);
        const again = (await (await start(worker, { dryRun: true, systems: ['clickhouse'] })).result()) as MaintenanceReport;
        assert.equal(again.plan.hash, report.plan.hash, 'the same state plans to the same hash');
      });

      it('merges each old partition under the threshold with its rows, the newest untouched, while the drops wait; rejected, nothing is dropped', async () => {
        const before = byPartition(await parts(ch, database, 'merged'));
        const retainedBefore = byPartition(await parts(ch, database, 'retained'));
        const newestId = monthStart(0).slice(0, 7).replace('-', '');
        const handle = await start(worker, { systems: ['clickhouse'] });
        const asked = await answer(handle, 'reject');
        const report = (await handle.result()) as MaintenanceReport;
        const after = byPartition(await parts(ch, database, 'merged'));
        // Retention: the plan lists exactly the three old partitions with their rows; rejected, none is dropped.
        const old = [5, 4, 3].map((back) => monthStart(back).slice(0, 7).replace('-', ''));
        const drops = report.plan.steps.filter((s) => s.kind === 'drop');
        assert.deepEqual(drops.map((s) => (s.kind === 'drop' ? s.partitionId : '')).sort(), old.sort());
        for (const s of drops) if (s.kind === 'drop') assert.equal(s.before.rows, retainedBefore.get(s.partitionId)!.rows);
        assert.equal(asked.actions.length, 3, 'only the drops are asked for');
        assert.ok(asked.actions.every((a) => /^DROP partition \d{6} of .*retained: \d+ rows/.test(a)), asked.actions.join('\n'));
        assert.equal(report.approval?.outcome, 'rejected');
        assert.deepEqual(byPartition(await parts(ch, database, 'retained')), retainedBefore, 'nothing dropped');
        assert.ok(report.steps.filter((x) => x.kind === 'drop').every((x) => x.outcome === 'skipped'));
        const merges = report.steps.filter((s) => s.kind === 'merge');
        assert.equal(merges.length, 3);
        assert.ok(merges.every((m) => m.outcome === 'done'), JSON.stringify(merges));
        for (const [partitionId, b] of before) {
          const a = after.get(partitionId)!;
          assert.equal(a.rows, b.rows, `partition ${partitionId} keeps its rows`);
          if (partitionId === newestId) assert.deepEqual(a.names, b.names, 'the newest partition is untouched');
          else {
            assert.ok(b.parts > MERGE_MAX_PARTS);
            assert.ok(a.parts <= MERGE_MAX_PARTS, `partition ${partitionId}: ${a.parts} parts`);
          }
        }
        for (const m of merges) assert.match(m.verified!, /rows unchanged \(\d+\): yes/);
      });

      it('platformBackup refuses, at plan, clickhousePartitions naming a partition or a table it does not back up', async () => {
        const handle = await worker.client.workflow.start('platformBackup', {
          taskQueue: worker.taskQueue,
          workflowId: `cmp-${id}-badparts-${randomUUID().slice(0, 8)}`,
          args: [{ components: ['clickhouse'], clickhouseTables: [`${database}.retained`], clickhousePartitions: { [`${database}.retained`]: [oldIds()[0]!, '209901'], [`${database}.merged`]: [oldIds()[0]!] }, retention: false }],
        });
        await assert.rejects(handle.result(), (err) => {
          assert.ok(err instanceof WorkflowFailedError, String(err));
          const cause = err.cause as ApplicationFailure;
          assert.equal(cause.type, 'InvalidInput');
          assert.match(cause.message, new RegExp(`input\\.clickhousePartitions\\.${database}\\.retained\\.1: partition "209901" of ${database}\\.retained does not exist`));
          assert.match(cause.message, new RegExp(`input\\.clickhousePartitions\\.${database}\\.merged: "${database}\\.merged" is not a table this backup covers`));
          return true;
        });
      });

      // Set by the approved run, for the undo after it.
      let dropped: { backupId: string; contentBefore: PartitionContent[]; partsBefore: ReturnType<typeof byPartition> } | undefined;

      it('retention approved: exactly the planned partitions are gone, the others unchanged', async () => {
        const before = byPartition(await parts(ch, database, 'retained'));
        const contentBefore = await content(ch, database, 'retained');
        const handle = await start(worker, { systems: ['clickhouse'] });
        await answer(handle, 'approve');
        const report = (await handle.result()) as MaintenanceReport;
        assert.equal(report.approval?.outcome, 'approved');
        assert.equal(report.approval?.authentication, 'ssh-signature');
        const after = byPartition(await parts(ch, database, 'retained'));
        const old = [5, 4, 3].map((back) => monthStart(back).slice(0, 7).replace('-', ''));
        assert.deepEqual([...after.keys()].sort(), [...before.keys()].filter((k) => !old.includes(k)).sort());
        for (const [k, v] of after) assert.deepEqual(v, before.get(k), `partition ${k} unchanged`);
        const drops = report.steps.filter((s) => s.kind === 'drop');
        assert.equal(drops.length, 3);
        assert.ok(drops.every((d) => d.outcome === 'done' && /partition gone: yes/.test(d.verified!)), JSON.stringify(drops));
        // backupBeforeDrop: the report names the backup taken first, and it holds exactly the dropped partitions.
        assert.ok(report.backupId, 'the report names the backup');
        dropped = { backupId: report.backupId, contentBefore, partsBefore: before };
        assert.deepEqual(report.backupPartitions, { [`${database}.retained`]: [...old].sort() });
        const s3 = connections.s3();
        const manifest = await readManifest(s3, worker.loaded.config.objectStore.backupBucket, report.backupId);
        s3.destroy();
        const held = manifest.pieces.filter((p) => p.component === 'clickhouse' && !p.name.endsWith('/schema'));
        assert.deepEqual(held.map((p) => p.name).sort(), old.map((p) => `${database}.retained/${p}`).sort(), 'one piece per dropped partition, nothing else');
        for (const p of held) assert.equal(p.rows, before.get(p.details!.partitionId as string)!.rows, `${p.name} holds the partition's rows`);
        assert.ok(manifest.pieces.some((p) => p.name === `${database}.retained/schema`));
        assert.equal(manifest.complete, false, 'a backup of some partitions is partial: never "latest", no retention slot');
        assert.ok(manifest.lacks!.some((l) => l.component === 'clickhouse' && l.reason.includes(`input.clickhousePartitions narrowed ${database}.retained`)), JSON.stringify(manifest.lacks));
      });

      it('with backupBeforeDrop, a restore into a scratch database and ATTACH PARTITION bring the dropped partitions back', async () => {
        assert.ok(dropped, 'the approved run dropped partitions');
        const scratch = `${database}_undo`;
        const s3 = connections.s3();
        const bucket = worker.loaded.config.objectStore.backupBucket;
        try {
          const handle = await worker.client.workflow.start('restore', {
            taskQueue: worker.taskQueue,
            workflowId: `cmp-${id}-undo-${randomUUID().slice(0, 8)}`,
            args: [{ backupId: dropped.backupId, components: ['clickhouse'], targets: { clickhouse: { [database]: scratch } } }],
          });
          const gate = await eventually('the restore to wait for approval', async () => {
            const s = await handle.query(restoreStatusQuery);
            return s.phase === 'awaiting approval' ? s : undefined;
          }, 120_000, 200);
          assert.ok(gate.plan!.warnings.some((w) => /PARTIAL/.test(w)), gate.plan!.warnings.join('\n'));
          const runId = (await handle.describe()).runId;
          await handle.executeUpdate(approveUpdate, { args: [await approvers.signAnswer('bob', { workflowId: handle.workflowId, runId, planHash: gate.plan!.hash, decision: 'approve', reason: 'cmp test: undo the drop' })] });
          const restored = (await handle.result()) as RestoreReport;
          assert.equal(restored.verified, true);
          await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: restored.reportKey }));
          // The scratch table holds exactly the dropped partitions: attach each back into the live table.
          const old = oldIds();
          assert.deepEqual([...byPartition(await parts(ch, scratch, 'retained')).keys()].sort(), [...old].sort());
          for (const partitionId of old) await ch.command({ query: `ALTER TABLE ${database}.retained ATTACH PARTITION ID '${partitionId}' FROM ${scratch}.retained` });
          assert.deepEqual(await content(ch, database, 'retained'), dropped.contentBefore, 'every partition holds exactly its original rows');
          const after = byPartition(await parts(ch, database, 'retained'));
          for (const [k, v] of dropped.partsBefore) if (!old.includes(k)) assert.deepEqual(after.get(k), v, `partition ${k} untouched by the undo`);
        } finally {
          await ch.command({ query: `DROP DATABASE IF EXISTS ${scratch}` }).catch(() => undefined);
          // The test's backup must not count among the stack's partial backups.
          for (const key of await listAllKeys(s3, bucket, `backups/${dropped.backupId}/`)) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
          s3.destroy();
        }
      });

      it('a table with a mutation that never finishes is not merged: the step checks the load itself, waits, and is skipped saying why', async () => {
        const table = `${database}.stuck`;
        await ch.command({ query: `CREATE TABLE ${table} (d Date, id UInt64) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id SETTINGS max_bytes_to_merge_at_max_space_in_pool = 1` });
        try {
          // Three parts in an old month, and a newer month (the newest partition is never merged).
          for (let i = 0; i < 3; i++) await ch.command({ query: `INSERT INTO ${table} SELECT toDate('${monthStart(2)}'), number + ${i * 100} FROM system.numbers LIMIT 10` });
          await ch.command({ query: `INSERT INTO ${table} SELECT toDate('${monthStart(0)}'), number + 1000 FROM system.numbers LIMIT 10` });
          // throwIf fails the mutation on every part, every time: it stays "not done" until killed.
          // A current server reports the first failure to the ALTER itself; the mutation stays.
          await ch.command({ query: `ALTER TABLE ${table} DELETE WHERE throwIf(id = 0) = 0` }).catch(() => undefined);
          await eventually('the stuck mutation', async () => {
            const [m] = await (await ch.query({ query: `SELECT count() AS n FROM system.mutations WHERE database = '${database}' AND table = 'stuck' AND NOT is_done`, format: 'JSONEachRow' })).json<{ n: string }>();
            return Number(m?.n) === 1 ? true : undefined;
          });
          const before = await parts(ch, database, 'stuck');
          const handle = await start(worker, { systems: ['clickhouse'] });
          await answer(handle, 'reject');
          const report = (await handle.result()) as MaintenanceReport;
          const step = report.steps.find((s) => s.id.includes(`${database}.stuck:`));
          assert.ok(step, report.steps.map((s) => s.id).join('\n'));
          assert.equal(step.outcome, 'skipped');
          assert.equal(step.reason, `the server stayed busy for 5 s: 1 mutation(s) running on ${database}.stuck`);
          assert.deepEqual(await parts(ch, database, 'stuck'), before, 'not merged');
        } finally {
          await ch.command({ query: `KILL MUTATION WHERE database = '${database}' AND table = 'stuck'` }).catch(() => undefined);
          await ch.command({ query: `DROP TABLE IF EXISTS ${table}` });
        }
      });
    });
  }

  describe('a window that closes mid-run, Postgres vacuum, Kafka retention drift', () => {
    const database = `cmp_${id}_window`;
    const pgDatabase = `cmp_${id}_pg`;
    const topic = `cmp-${id}-drifted`;
    let worker: StackWorker;
    let connections: Connections;
    let ch: ClickHouseClient;

    before(async () => {
      const loaded = maintenanceConfig(`cmp-${id}-other`, database, (raw) => {
        raw.postgres = { ...raw.postgres!, databases: [pgDatabase] };
        raw.maintenance!.kafka = { topics: [{ topic, retentionMs: 86_400_000 }] };
        raw.maintenance!.clickhouse!.tables!.push({ database, table: 'aged', rowDelete: { column: 'd', keepDays: 30 } });
        raw.maintenance!.buckets = { expire: [{ prefix: `cmp-${id}/`, keepDays: 0 }] };
        raw.maintenance!.postgres = { vacuum: { minDeadTuples: 100 } };
      }, approvers.allowedSignersFile);
      connections = createConnections(loaded.config, loaded.path);
      ch = connections.clickhouse();
      await ch.command({ query: `CREATE DATABASE ${database}` });
      await ch.command({ query: `CREATE TABLE ${database}.many (d Date, id UInt64) ENGINE = MergeTree PARTITION BY toYYYYMMDD(d) ORDER BY id SETTINGS max_bytes_to_merge_at_max_space_in_pool = 1` });
      // Eight daily partitions of three parts each, and today's.
      for (let day = 1; day <= 9; day++) {
        for (let i = 0; i < (day === 9 ? 1 : 3); i++) {
          await ch.command({ query: `INSERT INTO ${database}.many SELECT toDate('${monthStart(1)}') + ${day}, number FROM system.numbers LIMIT 10` });
        }
      }
      // An unpartitioned table (nothing to drop whole): rows 90 days old and a day old.
      await ch.command({ query: `CREATE TABLE ${database}.aged (d DateTime, id UInt64) ENGINE = MergeTree PARTITION BY tuple() ORDER BY id` });
      await ch.command({ query: `INSERT INTO ${database}.aged SELECT toDateTime(${Math.floor(Date.now() / 1000) - 90 * 86_400}), number FROM system.numbers LIMIT 100` });
      await ch.command({ query: `INSERT INTO ${database}.aged SELECT toDateTime(${Math.floor(Date.now() / 1000) - 86_400}), number + 1000 FROM system.numbers LIMIT 50` });
      const admin = new pg.Client(connections.postgres());
      await admin.connect();
      await admin.query(`CREATE DATABASE ${pgDatabase}`);
      await admin.end();
      const kafka = connections.kafka().admin();
      await kafka.connect();
      await kafka.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3, configEntries: [{ name: 'retention.ms', value: '3600000' }, { name: 'segment.bytes', value: '1048576' }] }], waitForLeaders: false });
      await kafka.disconnect();
      // Kafka's metadata lags across brokers: the topic is usable from any client only once each lists it.
      await waitForTopicsOnEveryBroker(loaded.config.kafka.brokers, [topic], 60_000);
      worker = await startStackWorker(loaded);
    });

    after(async () => {
      await worker?.close();
      await ch?.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
      await ch?.close();
      const admin = new pg.Client(connections.postgres());
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${pgDatabase} WITH (FORCE)`).catch(() => undefined);
      await admin.end();
      const kafka = connections.kafka().admin();
      await kafka.connect();
      await kafka.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await kafka.disconnect();
    });

    it('no step starts after the close, and the report lists what is left', async () => {
      const stopBy = Date.now() + 20_000;
      const handle = await start(worker, { systems: ['clickhouse'], stopBy: new Date(stopBy).toISOString() });
      // Held before its next step until the close has passed: then it must start nothing more.
      await handle.signal(pauseSignal, { by: 'cmp-test' });
      await eventually('the pause', async () => ((await handle.query(compactionStatusQuery)).phase === 'paused' ? true : undefined), 120_000, 200);
      await new Promise((r) => setTimeout(r, Math.max(0, stopBy - Date.now() + 500)));
      await handle.signal(resumeSignal, { by: 'cmp-test' });
      const report = (await handle.result()) as MaintenanceReport;
      assert.equal(report.outcome, 'window closed');
      assert.equal(report.plan.steps.filter((s) => s.kind === 'merge').length, 8);
      assert.ok(report.left.length >= 1, 'steps are left');
      assert.equal(report.steps.length + report.left.length, report.plan.steps.length);
      assert.ok(report.steps.every((s) => new Date(s.startedAt!).getTime() < stopBy), 'every step started before the close');
    });

    it('Postgres: on a table with many updated rows, the dead tuples fall', async () => {
      const db = new pg.Client(connections.postgres(pgDatabase));
      await db.connect();
      try {
        await db.query('CREATE TABLE cmp_churn (id int PRIMARY KEY, n int) WITH (autovacuum_enabled = false)');
        await db.query('INSERT INTO cmp_churn SELECT g, 0 FROM generate_series(1, 5000) g');
        await db.query('UPDATE cmp_churn SET n = n + 1');
        await db.query('UPDATE cmp_churn SET n = n + 1');
        const dead = async () => Number((await db.query<{ n: string }>("SELECT n_dead_tup AS n FROM pg_stat_user_tables WHERE relname = 'cmp_churn'")).rows[0]?.n ?? 0);
        const before = await eventually('the dead tuples in the statistics', async () => ((await dead()) >= 5000 ? dead() : undefined), 30_000, 200);
        const report = (await (await start(worker, { systems: ['postgres'] })).result()) as MaintenanceReport;
        const step = report.steps.find((s) => s.id.endsWith('public.cmp_churn'));
        assert.ok(step, JSON.stringify(report.plan.postgres));
        assert.equal(step.outcome, 'done', step.reason);
        assert.equal(step.before!.deadTuples, before);
        assert.ok(Number(step.after!.deadTuples) < before, step.verified);
        assert.ok((await dead()) < before);
      } finally {
        await db.end();
      }
    });

    it('Kafka: a topic whose retention.ms differs from the policy is reported, and fixed only after approval', async () => {
      const retentionMs = async () => {
        const admin = connections.kafka().admin();
        await admin.connect();
        try {
          const d = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'segment.bytes'] }] });
          return Object.fromEntries(d.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]));
        } finally {
          await admin.disconnect();
        }
      };
      const rejected = await start(worker, { systems: ['kafka'] });
      const asked = await answer(rejected, 'reject');
      assert.deepEqual(asked.actions, [`set topic ${topic}: retention.ms 3600000 -> 86400000`]);
      const rejectedReport = (await rejected.result()) as MaintenanceReport;
      assert.deepEqual(rejectedReport.plan.kafka, [{ topic, changes: [{ name: 'retention.ms', from: '3600000', to: '86400000' }] }]);
      assert.equal((await retentionMs())['retention.ms'], '3600000', 'unchanged after the rejection');
      const approved = await start(worker, { systems: ['kafka'] });
      await answer(approved, 'approve');
      const report = (await approved.result()) as MaintenanceReport;
      assert.equal(report.steps[0]?.outcome, 'done', report.steps[0]?.reason);
      // The broker answering may not have applied the committed change yet: wait until it has.
      const configs = await eventually('retention.ms 86400000 on the broker asked', async () => {
        const now = await retentionMs();
        return now['retention.ms'] === '86400000' ? now : undefined;
      });
      assert.equal(configs['segment.bytes'], '1048576', "the topic's other override is kept");
      const s3 = connections.s3();
      const stored = await s3.send(new GetObjectCommand({ Bucket: worker.loaded.config.objectStore.backupBucket, Key: report.reportKey }));
      const storedReport = JSON.parse(await stored.Body!.transformToString()) as MaintenanceReport;
      assert.match(report.reportKey, /^reports\/maintenance\//);
      assert.equal(storedReport.plan.hash, report.plan.hash, 'the report is kept in the backup bucket');
      s3.destroy();
    });

    it('ClickHouse row deletes: approved, exactly the rows before the cutoff are gone', async () => {
      const countAged = async (where: string) => Number((await (await ch.query({ query: `SELECT count() AS n FROM ${database}.aged WHERE ${where}`, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n);
      const handle = await start(worker, { systems: ['clickhouse'] });
      const asked = await answer(handle, 'approve');
      assert.ok(asked.actions.some((a) => a === `DELETE 100 rows FROM ${database}.aged WHERE toDate(d) < ${new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10)}`), asked.actions.join('\n'));
      const report = (await handle.result()) as MaintenanceReport;
      const step = report.steps.find((x) => x.kind === 'rowDelete')!;
      assert.equal(step.outcome, 'done', step.reason);
      assert.equal(await countAged('1'), 50, 'only the old rows are gone');
      assert.equal(await countAged(`id >= 1000`), 50);
    });

    it('bucket expiry: approved, the objects under the prefix older than keepDays are deleted, others kept', async () => {
      const s3 = connections.s3();
      const bucket = worker.loaded.config.objectStore.backupBucket;
      try {
        for (const key of [`cmp-${id}/a.json`, `cmp-${id}/b/c.json`, `cmp-${id}-keep/d.json`]) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{}' }));
        // keepDays 0: everything written before the run's start is older than the cutoff.
        await new Promise((r) => setTimeout(r, 1100));
        const handle = await start(worker, { systems: ['buckets'] });
        const asked = await answer(handle, 'approve');
        assert.match(asked.actions[0]!, new RegExp(`^delete 2 object\\(s\\), 4 bytes, under s3://${bucket}/cmp-${id}/ `));
        const report = (await handle.result()) as MaintenanceReport;
        assert.equal(report.steps[0]?.outcome, 'done', report.steps[0]?.reason);
        assert.deepEqual(await listAllKeys(s3, bucket, `cmp-${id}/`), []);
        assert.deepEqual(await listAllKeys(s3, bucket, `cmp-${id}-keep/`), [`cmp-${id}-keep/d.json`]);
      } finally {
        for (const key of await listAllKeys(s3, bucket, `cmp-${id}`)) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        s3.destroy();
      }
    });
  });
});

describe('compaction: a worker killed mid-merge', () => {
  const database = `cmp_${id}_kill`;
  let loaded: LoadedConfig;
  let connections: Connections;
  let ch: ClickHouseClient;
  let client: Client;
  let connection: Connection;
  const workers: WorkerProcess[] = [];

  before(async () => {
    loaded = writeDerivedConfig(`cmp-${id}-kill`, (raw) => {
      raw.temporal = { ...raw.temporal, taskQueue: `cmp-kill-${id}` };
      raw.clickhouse = { ...raw.clickhouse!, databases: [{ name: database }] };
      // Worker processes create the schedules their config names: these are the test's own, paused.
      raw.backup = { ...raw.backup, schedule: { ...raw.backup?.schedule, enabled: false, scheduleId: `cmp-kill-backup-${id}` } };
      raw.drill = { ...raw.drill, schedule: { ...raw.drill?.schedule, enabled: false, scheduleId: `cmp-kill-drill-${id}` } };
      raw.maintenance = { window: { start: hhmm(Date.now() - 3_600_000), durationMinutes: 180 }, clickhouse: { merge: { maxParts: 1 } } };
    });
    connections = createConnections(loaded.config, loaded.path);
    ch = connections.clickhouse();
    await ch.command({ query: `CREATE DATABASE ${database}` });
    await ch.command({ query: `CREATE TABLE ${database}.big (d Date, id UInt64, v String) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id SETTINGS max_bytes_to_merge_at_max_space_in_pool = 1` });
    // One old partition of six parts, big enough that its merge takes seconds; the newest of one.
    for (let i = 0; i < 6; i++) {
      await ch.command({ query: `INSERT INTO ${database}.big SELECT toDate('${monthStart(1)}'), number * 6 + ${i}, toString(rand()) FROM system.numbers LIMIT 1500000` });
    }
    await ch.command({ query: `INSERT INTO ${database}.big SELECT toDate('${monthStart(0)}'), number, 'n' FROM system.numbers LIMIT 10` });
    connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
    client = new Client({ connection, namespace: loaded.config.temporal.namespace, identity: 'cmp-test' });
    workers.push(await spawnWorker(loaded.path), await spawnWorker(loaded.path));
  });

  after(async () => {
    for (const w of workers) await w.stop().catch(() => undefined);
    for (const scheduleId of [loaded.config.backup.schedule.scheduleId, loaded.config.drill.schedule.scheduleId]) await client?.schedule.getHandle(scheduleId).delete().catch(() => undefined);
    await connection?.close();
    await ch?.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
    await ch?.close();
  });

  it('the run completes, the partition is merged once with its rows, and no step runs twice', async () => {
    const rowsBefore = byPartition(await parts(ch, database, 'big'));
    const handle = await client.workflow.start('compaction', { taskQueue: loaded.config.temporal.taskQueue, workflowId: `cmp-${id}-kill`, args: [{ systems: ['clickhouse'] }] });
    // The OPTIMIZE is running on the server: kill the worker that sent it.
    await eventually('the OPTIMIZE on the server', async () => {
      const running = await (await ch.query({ query: `SELECT count() AS n FROM system.processes WHERE query_id LIKE 'ballast-compaction-%' AND query LIKE '%${database}%'`, format: 'JSONEachRow' })).json<{ n: string }>();
      return Number(running[0]!.n) > 0 ? true : undefined;
    }, 120_000, 50);
    const running = await handle.describe();
    const identity = running.raw.pendingActivities?.find((a) => a.activityType?.name === 'mergeClickHousePartition')?.lastWorkerIdentity ?? '';
    const victim = workers.find((w) => identity.startsWith(`${w.child.pid}@`)) ?? workers[0]!;
    await victim.kill();
    const report = (await handle.result()) as MaintenanceReport;
    assert.equal(report.outcome, 'completed');
    // Temporal records a retried activity's last attempt: 2 means the killed attempt was taken up by the other worker.
    const events = (await handle.fetchHistory()).events!;
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'mergeClickHousePartition')!;
    const merged = events.find((e) => e.activityTaskStartedEventAttributes && Number(e.activityTaskStartedEventAttributes.scheduledEventId) === Number(scheduled.eventId))!;
    assert.equal(merged.activityTaskStartedEventAttributes!.attempt, 2, 'the merge ran on, once, after its worker died');
    const merges = report.steps.filter((s) => s.kind === 'merge');
    assert.equal(merges.length, 1, 'one merge step, reported once');
    assert.ok(['done', 'already done'].includes(merges[0]!.outcome), JSON.stringify(merges[0]));
    const after = byPartition(await parts(ch, database, 'big'));
    for (const [partitionId, b] of rowsBefore) assert.equal(after.get(partitionId)!.rows, b.rows, `partition ${partitionId} keeps its rows`);
    const old = monthStart(1).slice(0, 7).replace('-', '');
    assert.equal(after.get(old)!.parts, 1, 'merged');
  });
});
