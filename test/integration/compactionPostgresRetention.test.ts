import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { planSteps } from '../../activities/maintenance/plan';
import { createPostgresPartitionRetentionActivities, detachMarker } from '../../activities/postgres/partitionRetention';
import type { MaintenanceReport, PgPartitionDropStep, StepAttempt, StepResult } from '../../contracts/maintenanceTypes';
import { createApprovers, type Approvers } from '../../localStack/approvers';
import { writeDerivedConfig } from '../../localStack/derivedConfig';
import type { LoadedConfig } from '../../workers/config';
import { createConnections, type Connections } from '../../workers/connections';
import { approveUpdate, rejectUpdate } from '../../workflows/approval';
import { compactionStatusQuery, type CompactionInput } from '../../workflows/compaction';
import { eventually, startStackWorker, type StackWorker } from '../helpers/stackWorker';

// compaction's Postgres partition retention on the real stack, in a database of its own (cmpr_<id>),
// dropped afterwards. Every date is derived from the test's clock.

const id = randomUUID().slice(0, 8);
const database = `cmpr_${id}`;
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

/** The first day of the month `back` months before now (negative: after), YYYY-MM-DD. */
function monthStart(back: number): string {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1)).toISOString().slice(0, 10);
}
/** The day `back` days before now, YYYY-MM-DD. */
const dayBefore = (back: number) => new Date(Date.now() - back * 86_400_000).toISOString().slice(0, 10);
const monthName = (back: number) => monthStart(back).slice(0, 7).replace('-', '_');

/** Six monthly partitions of `table` (timestamptz key), the current month and five before, `rows(back)` rows each. */
async function monthlyTable(db: pg.Client, table: string, rows: (back: number) => number, months = [5, 4, 3, 2, 1, 0]): Promise<void> {
  await db.query(`CREATE TABLE ${table} (at timestamptz NOT NULL, id int NOT NULL, v text) PARTITION BY RANGE (at)`);
  for (const back of months) {
    await db.query(`CREATE TABLE ${table}_${monthName(back)} PARTITION OF ${table} FOR VALUES FROM ('${monthStart(back)}') TO ('${monthStart(back - 1)}')`);
    await db.query(`INSERT INTO ${table} SELECT '${monthStart(back)}'::timestamptz + (g % 20) * interval '1 day', g, 'r' FROM generate_series(1, ${rows(back)}) g`);
  }
}

interface Partition {
  parent: string;
  name: string;
  bounds: string;
  rows: number;
}

/** Every partition in the database's public schema, with its bounds and rows. */
async function partitions(db: pg.Client): Promise<Partition[]> {
  const { rows } = await db.query<{ parent: string; name: string; bounds: string }>(
    `SELECT p.relname AS parent, c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bounds
     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
     WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1, 2`,
  );
  const out: Partition[] = [];
  for (const r of rows) out.push({ ...r, rows: await count(db, r.name) });
  return out;
}

const count = async (db: pg.Client, table: string) => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${pg.escapeIdentifier(table)}`)).rows[0]!.n);
const exists = async (db: pg.Client, table: string) => (await db.query('SELECT 1 FROM pg_class WHERE relnamespace = $1::regnamespace AND relname = $2', ['public', table])).rows.length === 1;

describe('compaction: Postgres partition retention on the real stack', () => {
  let approvers: Approvers;
  let worker: StackWorker;
  let connections: Connections;
  let db: pg.Client;
  const policyTables = ['events', 'swapped', 'daily', 'plain', 'missing', 'listed'];

  before(async () => {
    approvers = await createApprovers(['alice', 'bob']);
    const loaded = writeDerivedConfig(`cmpr-${id}`, (raw) => {
      raw.postgres = { ...raw.postgres!, databases: [database] };
      raw.approvals = { ...raw.approvals, allowedSignersFile: approvers.allowedSignersFile, approvers: ['bob'], fourEyes: true };
      raw.maintenance = {
        window: { start: hhmm(Date.now() - 3_600_000), durationMinutes: 180 },
        schedule: { enabled: false, scheduleId: `cmpr-schedule-${id}` },
        postgres: {
          vacuum: { enabled: false },
          retention: [
            { table: 'public.events', keepMonths: 3 },
            { table: 'public.swapped', keepMonths: 3 },
            { database, table: 'public.daily', keepDays: 30 },
            { table: 'public.plain', keepMonths: 3 },
            { table: 'public.missing', keepDays: 30 },
            { table: 'public.listed', keepMonths: 3 },
          ],
        },
        busyWaitSeconds: 5,
      };
    });
    connections = createConnections(loaded.config, loaded.path);
    const admin = new pg.Client(connections.postgres());
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    db = new pg.Client(connections.postgres(database));
    await db.connect();
    await monthlyTable(db, 'events', (back) => 100 + back);
    await monthlyTable(db, 'swapped', (back) => 200 + back);
    // daily: by date, with a DEFAULT partition (so no DETACH CONCURRENTLY); keepDays 30.
    await db.query('CREATE TABLE daily (d date NOT NULL, id int) PARTITION BY RANGE (d)');
    await db.query(`CREATE TABLE daily_old PARTITION OF daily FOR VALUES FROM ('${dayBefore(40)}') TO ('${dayBefore(39)}')`);
    await db.query(`CREATE TABLE daily_recent PARTITION OF daily FOR VALUES FROM ('${dayBefore(10)}') TO ('${dayBefore(9)}')`);
    await db.query('CREATE TABLE daily_default PARTITION OF daily DEFAULT');
    for (const [back, n] of [[40, 11], [10, 12], [60, 13]] as const) await db.query(`INSERT INTO daily SELECT '${dayBefore(back)}', g FROM generate_series(1, ${n}) g`);
    await db.query('CREATE TABLE plain (at timestamptz, id int)');
    await db.query(`INSERT INTO plain SELECT '${monthStart(5)}', g FROM generate_series(1, 10) g`);
    await db.query('CREATE TABLE listed (d date NOT NULL) PARTITION BY LIST (d)');
    await db.query(`CREATE TABLE listed_old PARTITION OF listed FOR VALUES IN ('${monthStart(5)}')`);
    await db.query(`INSERT INTO listed VALUES ('${monthStart(5)}')`);
    worker = await startStackWorker(loaded);
  });

  after(async () => {
    await worker?.close();
    await db?.end().catch(() => undefined);
    const admin = new pg.Client(connections.postgres());
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  });

  const start = (input: CompactionInput) => worker.client.workflow.start('compaction', { taskQueue: worker.taskQueue, workflowId: `cmpr-${id}-${randomUUID().slice(0, 8)}`, args: [input] });
  /** The approval the run asks for, once it asks. */
  const asked = (handle: WorkflowHandle) =>
    eventually('the approval ask', async () => {
      const s = await handle.query(compactionStatusQuery);
      return s.approval;
    }, 120_000, 200);
  /** bob signs `decision` over the plan hash the run shows. */
  const answer = async (handle: WorkflowHandle, decision: 'approve' | 'reject', hash: string) => {
    const runId = (await handle.describe()).runId;
    const signed = await approvers.signAnswer('bob', { workflowId: handle.workflowId, runId, planHash: hash, decision, reason: `cmpr test ${decision}` });
    await handle.executeUpdate(decision === 'approve' ? approveUpdate : rejectUpdate, { args: [signed] });
  };
  const old = (table: string) => [5, 4, 3].map((back) => `${table}_${monthName(back)}`);
  const kept = (table: string) => [2, 1, 0].map((back) => `${table}_${monthName(back)}`);

  it('the plan lists exactly the partitions that end before the cutoff, with their rows; a missing, plain or LIST table is a plan problem with no step', async () => {
    const before = await partitions(db);
    const report = (await (await start({ dryRun: true, systems: ['postgres'] })).result()) as MaintenanceReport;
    assert.deepEqual(await partitions(db), before, 'nothing changed');
    const plans = new Map(report.plan.postgresPartitions.map((p) => [p.table, p]));
    assert.deepEqual([...plans.keys()], policyTables.map((t) => `public.${t}`));
    for (const table of ['events', 'swapped']) {
      const plan = plans.get(`public.${table}`)!;
      assert.equal(plan.problem, undefined);
      assert.equal(plan.key, 'RANGE (at)');
      assert.equal(plan.cutoff, `${monthStart(2)}T00:00:00.000Z`);
      const drops = plan.partitions.filter((p) => p.action === 'drop');
      assert.deepEqual(drops.map((p) => p.name).sort(), old(table).sort());
      for (const p of drops) {
        assert.equal(p.rows, before.find((b) => b.name === p.name)!.rows, `${p.name}: its rows, counted`);
        assert.equal(p.rowsCounted, true);
        assert.ok(p.bytes > 0);
      }
      for (const p of plan.partitions.filter((x) => x.action === 'none')) assert.match(p.reason, /is after the cutoff .*: kept/);
      assert.deepEqual(plan.partitions.filter((p) => p.action === 'none').map((p) => p.name).sort(), kept(table).sort());
    }
    const daily = plans.get('public.daily')!;
    assert.deepEqual(daily.partitions.map((p) => [p.name, p.action]), [['daily_default', 'none'], ['daily_old', 'drop'], ['daily_recent', 'none']]);
    assert.match(daily.partitions[0]!.reason, /DEFAULT partition holds rows of any date: never dropped/);
    assert.match(plans.get('public.plain')!.problem!, /^public\.plain is a plain table, not a partitioned table: retention drops whole partitions only$/);
    assert.equal(plans.get('public.missing')!.problem, `no table public.missing in database ${database}`);
    assert.match(plans.get('public.listed')!.problem!, /partitioned by LIST \(d\): LIST partitions have no upper bound in time/);
    const steps = report.plan.steps.filter((s): s is PgPartitionDropStep => s.kind === 'pgPartitionDrop');
    assert.equal(report.plan.steps.length, steps.length, 'vacuum is off: only the drops');
    assert.deepEqual(steps.map((s) => s.partition).sort(), [...old('events'), ...old('swapped'), 'daily_old'].sort());
    assert.ok(steps.every((s) => s.destructive === 'partitionDrop'));
  });

  it('rejected: nothing is dropped', async () => {
    const before = await partitions(db);
    const handle = await start({ systems: ['postgres'] });
    const ask = await asked(handle);
    assert.equal(ask.plan.actions.length, 7);
    for (const action of ask.plan.actions) {
      assert.match(action, new RegExp(`^DETACH and DROP partition public\\.\\w+ of public\\.(events|swapped|daily) in database ${database} \\(FOR VALUES FROM \\('[^)]+'\\) TO \\('[^)]+'\\)\\): \\d+ rows, \\d+ bytes \\(upper bound`), action);
    }
    await answer(handle, 'reject', ask.plan.hash);
    const report = (await handle.result()) as MaintenanceReport;
    assert.equal(report.approval?.outcome, 'rejected');
    assert.ok(report.steps.every((s) => s.outcome === 'skipped' && /^not approved: rejected/.test(s.reason!)), JSON.stringify(report.steps));
    assert.deepEqual(await partitions(db), before, 'every partition still attached with its rows');
  });

  it('approved: exactly the planned partitions are gone, the others unchanged; partitions swapped, re-bounded or detached after the plan are not dropped', async () => {
    const before = await partitions(db);
    const handle = await start({ systems: ['postgres'] });
    const ask = await asked(handle);
    // A careless operator, between the plan and the approval: the oldest swapped partition is
    // detached, kept aside, and a plain table takes its name; the next is re-attached with other
    // bounds; the third is detached and kept.
    const [a, b, c] = old('swapped') as [string, string, string];
    await db.query(`ALTER TABLE swapped DETACH PARTITION ${a}`);
    await db.query(`ALTER TABLE ${a} RENAME TO ${a}_kept`);
    await db.query(`CREATE TABLE ${a} (at timestamptz, id int, v text)`);
    await db.query(`INSERT INTO ${a} SELECT now(), g, 'impostor' FROM generate_series(1, 3) g`);
    await db.query(`ALTER TABLE swapped DETACH PARTITION ${b}`);
    await db.query(`ALTER TABLE swapped ATTACH PARTITION ${b} FOR VALUES FROM ('${monthStart(4)}') TO ('${monthStart(4).slice(0, 8)}25')`);
    await db.query(`ALTER TABLE swapped DETACH PARTITION ${c}`);
    await answer(handle, 'approve', ask.plan.hash);
    const report = (await handle.result()) as MaintenanceReport;
    assert.equal(report.outcome, 'completed', JSON.stringify(report.steps));
    const result = (partition: string) => report.steps.find((s) => s.id.endsWith(`:public.${partition}`))!;

    // events and daily: exactly the old partitions are gone, the others keep bounds and rows.
    const after = await partitions(db);
    for (const table of ['events', 'daily']) {
      const dropped = table === 'events' ? old('events') : ['daily_old'];
      assert.deepEqual(after.filter((p) => p.parent === table), before.filter((p) => p.parent === table && !dropped.includes(p.name)), `${table}: the others unchanged`);
      for (const name of dropped) {
        assert.equal(await exists(db, name), false, `${name} dropped`);
        const r = result(name);
        assert.equal(r.outcome, 'done', r.reason);
        assert.equal(r.before!.rows, before.find((p) => p.name === name)!.rows);
        assert.ok(r.bytesReclaimed! > 0);
        assert.match(r.verified!, /partition gone: yes; the other \d+ partition\(s\) still attached: yes/);
        assert.match(r.verified!, table === 'events' ? /^detached CONCURRENTLY;/ : /^detached \(not CONCURRENTLY: the parent has a DEFAULT partition\);/);
      }
    }
    assert.equal(await count(db, 'daily_default'), 13, 'the DEFAULT partition keeps its old rows');

    // swapped: nothing dropped; every table there is keeps its rows.
    assert.match(result(a).reason!, new RegExp(`^changed since the plan was approved: the planned partition \\(oid \\d+\\) is now named public\\.${a}_kept, and public\\.${a} is another table \\(oid \\d+\\); not dropped`));
    assert.match(result(b).reason!, new RegExp(`^changed since the plan was approved: public\\.${b} is now FOR VALUES FROM \\('${monthStart(4)}[^)]*'\\) TO \\('${monthStart(4).slice(0, 8)}25[^)]*'\\), the plan's FOR VALUES`));
    assert.match(result(c).reason!, new RegExp(`^changed since the plan was approved: public\\.${c} was detached by someone else; not dropped`));
    assert.ok([a, b, c].every((p) => result(p).outcome === 'skipped'));
    assert.equal(await count(db, a), 3, 'the impostor is untouched');
    assert.equal(await count(db, `${a}_kept`), before.find((p) => p.name === a)!.rows);
    assert.equal(await count(db, b), before.find((p) => p.name === b)!.rows);
    assert.equal(await count(db, c), before.find((p) => p.name === c)!.rows);
    assert.deepEqual(after.filter((p) => p.parent === 'swapped' && p.name !== b), before.filter((p) => p.parent === 'swapped' && ![a, b, c].includes(p.name)));
  });
});

describe('compaction: a Postgres partition drop resumes what a killed attempt left', () => {
  const table = 'resumed';
  const workflowId = `cmpr-${id}-resume`;
  let loaded: LoadedConfig;
  let connections: Connections;
  let db: pg.Client;
  let steps: Map<string, PgPartitionDropStep>;
  let activities: ReturnType<typeof createPostgresPartitionRetentionActivities>;
  const resumeDatabase = `${database}_r`;
  const name = (back: number) => `${table}_${monthName(back)}`;

  before(async () => {
    loaded = writeDerivedConfig(`cmpr-${id}-resume`, (raw) => {
      raw.postgres = { ...raw.postgres!, databases: [resumeDatabase] };
      raw.maintenance = { postgres: { retention: [{ table: `public.${table}`, keepMonths: 3 }], vacuum: { lockTimeoutMs: 300, retries: 1 } } };
    });
    connections = createConnections(loaded.config, loaded.path);
    const admin = new pg.Client(connections.postgres());
    await admin.connect();
    await admin.query(`CREATE DATABASE ${resumeDatabase}`);
    await admin.end();
    db = new pg.Client(connections.postgres(resumeDatabase));
    await db.connect();
    await monthlyTable(db, table, (back) => 50 + back, [7, 6, 5, 4, 3, 0]);
    activities = createPostgresPartitionRetentionActivities({ config: loaded.config, connections });
    const plan = await activities.planPostgresPartitionRetention({ now: new Date().toISOString() });
    const planned = planSteps({ clickhouse: [], rowDeletes: [], postgres: [], postgresPartitions: plan, kafka: [], kafkaRecordDeletes: [], buckets: [] }, () => ({ final: false, maxParts: 1 }));
    steps = new Map(planned.filter((s): s is PgPartitionDropStep => s.kind === 'pgPartitionDrop').map((s) => [s.partition, s]));
    assert.deepEqual([...steps.keys()].sort(), [7, 6, 5, 4, 3].map(name).sort());
  });

  after(async () => {
    await db?.end().catch(() => undefined);
    const admin = new pg.Client(connections.postgres());
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${resumeDatabase} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  });

  const attempt = (partition: string): Promise<StepAttempt> => new MockActivityEnvironment().run(activities.dropPostgresPartition, { step: steps.get(partition)!, workflowId });
  const drop = async (partition: string): Promise<StepResult> => {
    const result = await attempt(partition);
    assert.ok(!('busy' in result), `the step found the server busy: ${JSON.stringify(result)}`);
    return result;
  };
  const mark = (partition: string) => db.query(`COMMENT ON TABLE ${partition} IS ${pg.escapeLiteral(detachMarker(workflowId, steps.get(partition)!.id))}`);
  const attachedNames = async () => (await db.query<{ name: string }>(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '${table}'::regclass AND NOT i.inhdetachpending ORDER BY 1`)).rows.map((r) => r.name);
  const isPending = async (partition: string) => (await db.query(`SELECT 1 FROM pg_inherits WHERE inhrelid = '${partition}'::regclass AND inhdetachpending`)).rows.length === 1;

  /** A DETACH CONCURRENTLY that gave up waiting for an open transaction: the partition is left pending. */
  async function leavePending(partition: string): Promise<void> {
    const reader = new pg.Client(connections.postgres(resumeDatabase));
    await reader.connect();
    try {
      await reader.query('BEGIN');
      await reader.query(`SELECT count(*) FROM ${table}`);
      await db.query("SET lock_timeout = '300ms'");
      await assert.rejects(db.query(`ALTER TABLE ${table} DETACH PARTITION ${partition} CONCURRENTLY`), /lock timeout/);
      await db.query('RESET lock_timeout');
      await reader.query('ROLLBACK');
    } finally {
      await reader.end();
    }
    assert.ok(await isPending(partition));
  }

  it('a detach left pending by this run is finalized, then the table dropped; run again, it is "already done"', async () => {
    const partition = name(7);
    await mark(partition);
    await leavePending(partition);
    const result = await drop(partition);
    assert.equal(result.outcome, 'done', result.reason);
    assert.equal(result.reason, 'finished the detach an earlier attempt of this run started');
    assert.match(result.verified!, /^detach FINALIZEd; partition gone: yes/);
    assert.equal(result.before!.rows, 57);
    assert.equal(await exists(db, partition), false);
    const again = await drop(partition);
    assert.equal(again.outcome, 'already done');
  });

  it('a table this run detached is dropped; one detached by anybody else, or pending by anybody else, is not', async () => {
    const ours = name(6);
    await mark(ours);
    await db.query(`ALTER TABLE ${table} DETACH PARTITION ${ours}`);
    const result = await drop(ours);
    assert.equal(result.outcome, 'done', result.reason);
    assert.equal(await exists(db, ours), false);

    const theirs = name(5);
    await leavePending(theirs);
    const refused = await drop(theirs);
    assert.equal(refused.outcome, 'skipped');
    assert.match(refused.reason!, /someone else started a DETACH CONCURRENTLY of it/);
    assert.equal(await count(db, theirs), 55, 'still there, with its rows');
    await db.query(`ALTER TABLE ${table} DETACH PARTITION ${theirs} FINALIZE`);
    const detached = await drop(theirs);
    assert.match(detached.reason!, /was detached by someone else/);
    assert.equal(await count(db, theirs), 55);
  });

  it('while another session holds a conflicting lock on the parent, a new detach does nothing and says why; once it is released, the drop goes on', async () => {
    const partition = name(3);
    const attachedBefore = await attachedNames();
    const holder = new pg.Client(connections.postgres(resumeDatabase));
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${table} IN SHARE UPDATE EXCLUSIVE MODE`);
      assert.deepEqual(await attempt(partition), { busy: `locks held on public.${table}: ShareUpdateExclusiveLock x1` });
      assert.deepEqual(await attachedNames(), attachedBefore, 'nothing detached');
      const { rows } = await db.query<{ comment: string | null }>(`SELECT obj_description('${partition}'::regclass, 'pg_class') AS comment`);
      assert.equal(rows[0]!.comment, null, 'not even marked');
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    const result = await drop(partition);
    assert.equal(result.outcome, 'done', result.reason);
    assert.equal(await exists(db, partition), false);
  });

  it('a partition whose drop fails (a view depends on it) is attached back with its bounds and rows', async () => {
    const partition = name(4);
    const attachedBefore = await attachedNames();
    await db.query(`CREATE VIEW ${partition}_view AS SELECT * FROM ${partition}`);
    const result = await drop(partition);
    assert.equal(result.outcome, 'failed');
    assert.match(result.reason!, new RegExp(`^DROP TABLE "public"."${partition}" failed after 1 attempt\\(s\\): cannot drop table (public\\.)?${partition} because other objects depend on it; re-attached with its bounds, nothing lost$`));
    assert.deepEqual(await attachedNames(), attachedBefore);
    const { rows } = await db.query<{ bounds: string; comment: string | null }>(`SELECT pg_get_expr(relpartbound, oid) AS bounds, obj_description(oid, 'pg_class') AS comment FROM pg_class WHERE oid = '${partition}'::regclass`);
    assert.equal(rows[0]!.bounds.replace(/ 00:00:00\+00/g, ''), `FOR VALUES FROM ('${monthStart(4)}') TO ('${monthStart(3)}')`);
    assert.equal(rows[0]!.comment, null, 'the mark is gone');
    assert.equal(await count(db, partition), 54);
  });
});
